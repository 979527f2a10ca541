using FederatedFunctions.LocalHost.Commands;

var context = new CommandContext(Console.Out, Console.Error);
return await FlCommands.Build(context).Parse(args).InvokeAsync().ConfigureAwait(false);

using System.Globalization;
using FederatedFunctions.LocalHost.Local;
using FederatedFunctions.TestSupport;
using FederatedFunctions.Workflow.Orchestration;

// Usage: FederatedFunctions.JobPolls [POLLS] — a silo job that stays queued for POLLS reads, on the Azure Storage backend.
var ci = CultureInfo.InvariantCulture;
var polls = args.Length > 0 ? int.Parse(args[0], ci) : 1000;
using var azurite = await Azurite.StartChildAsync(Azurite.FindExecutable(RepositoryPaths.Root), dataDirectory: null);
var history = await LongJobProbe.RunAsync(azurite.Endpoint.ConnectionString, polls);
Console.WriteLine(string.Create(ci, $"Machine: {Environment.ProcessorCount} cores, .NET {Environment.Version}; Azure Storage backend on Azurite; a continue-as-new every {SiloJobOrchestrator.PollsPerInstance} polls."));
Console.WriteLine();
Console.WriteLine("| polls | history rows, most at any sample | history rows at the end | wall time (s) |");
Console.WriteLine("|---:|---:|---:|---:|");
Console.WriteLine(string.Create(ci, $"| {history.Polls} | {history.MaxRows} | {history.FinalRows} | {history.Seconds:0} |"));
return 0;

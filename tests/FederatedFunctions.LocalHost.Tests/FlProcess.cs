using System.Diagnostics;
using FederatedFunctions.TestSupport;

namespace FederatedFunctions.LocalHost.Tests;

/// <summary>The real <c>fl</c> binary (built next to the tests), run as the README runs it, in a workspace of its own.</summary>
internal static class FlProcess
{
    /// <summary>A start description for <c>fl ARGS</c> with <c>FL_HOME</c> = <paramref name="home"/>; <paramref name="storage"/> null lets fl start its own Azurite.</summary>
    public static ProcessStartInfo Create(string home, string? storage, params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Path.Combine(AppContext.BaseDirectory, "fl.dll"));
        foreach (var a in args)
        {
            psi.ArgumentList.Add(a);
        }

        psi.Environment["FL_ROOT"] = RepositoryPaths.Root;
        psi.Environment["FL_HOME"] = home;
        if (storage is null)
        {
            psi.Environment.Remove("FL_STORAGE");
        }
        else
        {
            psi.Environment["FL_STORAGE"] = storage;
        }

        return psi;
    }

    /// <summary>Gives the process <paramref name="config"/>'s silo registry entries as <c>FL_Silos__…</c> environment variables.</summary>
    public static ProcessStartInfo WithSilos(this ProcessStartInfo psi, Microsoft.Extensions.Configuration.IConfiguration config)
    {
        foreach (var (key, value) in Microsoft.Extensions.Configuration.ConfigurationExtensions.AsEnumerable(config))
        {
            if (value is not null && key.StartsWith("Silos:", StringComparison.Ordinal))
            {
                psi.Environment["FL_" + key.Replace(":", "__", StringComparison.Ordinal)] = value;
            }
        }

        return psi;
    }

    /// <summary>Runs <c>fl ARGS</c> to completion (5 minutes at most).</summary>
    public static async Task<(int Code, string Out, string Err)> RunAsync(string home, string? storage, params string[] args)
    {
        using var p = Process.Start(Create(home, storage, args))!;
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        using var cts = new CancellationTokenSource(TimeSpan.FromMinutes(5));
        await p.WaitForExitAsync(cts.Token);
        return (p.ExitCode, await stdout, await stderr);
    }
}

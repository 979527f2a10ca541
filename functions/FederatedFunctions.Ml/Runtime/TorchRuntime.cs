using TorchSharp;

namespace FederatedFunctions.Ml;

/// <summary>Loads the native TorchSharp runtime once and fixes its thread count.</summary>
/// <remarks>
/// Every public entry point of this assembly that touches tensors calls <see cref="EnsureInitialized"/> first, so
/// callers need not, though a host may call it at start-up to fail fast. The first call sets the intra-op thread
/// count to <see cref="Environment.ProcessorCount"/> and creates one tensor; later calls are free. Training is
/// bit-reproducible only for a fixed thread count, which is why it is set here rather than left to libtorch.
/// If the native library cannot be loaded, every call throws the same <see cref="InvalidOperationException"/>,
/// whose message names the real cause: TorchSharp's own message ("doesn't contain a reference to
/// libtorch-cpu-linux-x64") points at packages, while on Debian 12 the cause is a libstdc++ older than
/// <c>GLIBCXX_3.4.32</c>.
/// </remarks>
public static class TorchRuntime
{
    private static readonly Lazy<int> Threads = new(Initialize, LazyThreadSafetyMode.ExecutionAndPublication);

    /// <summary>The intra-op thread count set by <see cref="EnsureInitialized"/>.</summary>
    public static int ThreadCount => Threads.Value;

    /// <summary>Environment variable that sets the intra-op thread count (default: the core count).</summary>
    /// <remarks>Hosts that train several silos at once in one process set it to 1: small models gain nothing from intra-op threads, and they contend.</remarks>
    public const string ThreadsVariable = "FL_TORCH_THREADS";

    /// <summary>Loads libtorch and sets its thread count, once per process.</summary>
    /// <exception cref="InvalidOperationException">The native runtime could not be loaded; the message says why and how to fix it.</exception>
    public static void EnsureInitialized() => _ = Threads.Value;

    private static int Initialize()
    {
        try
        {
            var threads = int.TryParse(Environment.GetEnvironmentVariable(ThreadsVariable), out var configured) && configured > 0
                ? configured
                : Math.Max(1, Environment.ProcessorCount);
            torch.set_num_threads(threads);
            using var probe = torch.zeros(1);
            return threads;
        }
        catch (Exception ex) when (ex is TypeInitializationException or DllNotFoundException or NotSupportedException
            or EntryPointNotFoundException or BadImageFormatException)
        {
            throw new InvalidOperationException(DescribeLoadFailure(OperatingSystem.IsLinux(), HasGlibcxx3432()), ex);
        }
    }

    /// <summary>The message for a failed native load, given the platform and whether libstdc++ is new enough.</summary>
    internal static string DescribeLoadFailure(bool isLinux, bool hasGlibcxx3432)
    {
        const string Advice =
            "TorchSharp's native library (libLibTorchSharp.so) needs GLIBCXX_3.4.32, i.e. the C++ runtime of GCC 13 or newer. " +
            "Debian 12 ships GCC 12's libstdc++ (newest version GLIBCXX_3.4.30), and the load then fails with a misleading " +
            "message about a missing libtorch-cpu-linux-x64 package reference. Run scripts/setup.sh, which installs libstdc++6 " +
            "from the next Debian suite; check with: strings /usr/lib/x86_64-linux-gnu/libstdc++.so.6 | grep GLIBCXX_3.4.32.";
        if (!isLinux)
        {
            return "The TorchSharp native runtime could not be loaded; this project restores native libraries for linux-x64 only (see the inner exception).";
        }

        return hasGlibcxx3432
            ? "The TorchSharp native runtime could not be loaded although libstdc++ provides GLIBCXX_3.4.32; " +
              "check that the libtorch-cpu-linux-x64 package restored its native files next to the application (see the inner exception)."
            : "The TorchSharp native runtime could not be loaded. " + Advice;
    }

    private static bool HasGlibcxx3432()
    {
        foreach (var path in (string[])["/usr/lib/x86_64-linux-gnu/libstdc++.so.6", "/usr/lib64/libstdc++.so.6"])
        {
            try
            {
                if (File.Exists(path) && ContainsAscii(File.ReadAllBytes(path), "GLIBCXX_3.4.32"u8))
                {
                    return true;
                }
            }
            catch (IOException)
            {
                // An unreadable file proves nothing either way.
            }
            catch (UnauthorizedAccessException)
            {
            }
        }

        return false;
    }

    private static bool ContainsAscii(ReadOnlySpan<byte> haystack, ReadOnlySpan<byte> needle) => haystack.IndexOf(needle) >= 0;
}

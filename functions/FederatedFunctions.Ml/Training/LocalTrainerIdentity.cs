using System.Security.Cryptography;
using FederatedFunctions.Core.Silos;

namespace FederatedFunctions.Ml;

/// <summary>The identity of this build's TorchSharp trainer (<see cref="LocalTrainer"/>).</summary>
/// <remarks>
/// Its hash is that of this assembly's file, so any change to the training code changes it and must be approved again for
/// eyes-off runs.
/// </remarks>
public static class LocalTrainerIdentity
{
    private static readonly Lazy<TrainerIdentity> Identity = new(() =>
    {
        var path = typeof(LocalTrainer).Assembly.Location;
        return new TrainerIdentity("federatedfunctions-local-trainer", Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path))));
    });

    /// <summary>The trainer of this build.</summary>
    public static TrainerIdentity Value => Identity.Value;
}

using System.Security.Cryptography;

namespace FederatedFunctions.Ml;

/// <summary>The identity of the code that trains on silo data: a name and the SHA-256 of its binary.</summary>
/// <remarks>
/// Eyes-off runs may use only trainers whose identity and hash are in the orchestrator's allow-list
/// (<c>Trust:ApprovedTrainers</c>). The local trainer's hash is that of this assembly's file, so any change to the
/// training code changes it and must be approved again.
/// </remarks>
/// <param name="Id">Trainer name.</param>
/// <param name="Sha256">Lowercase hex SHA-256 of the trainer's binary.</param>
public sealed record TrainerIdentity(string Id, string Sha256)
{
    private static readonly Lazy<TrainerIdentity> LocalIdentity = new(() =>
    {
        var path = typeof(LocalTrainer).Assembly.Location;
        return new TrainerIdentity("federatedfunctions-local-trainer", Convert.ToHexStringLower(SHA256.HashData(File.ReadAllBytes(path))));
    });

    /// <summary>The TorchSharp trainer of this build (<see cref="LocalTrainer"/>).</summary>
    public static TrainerIdentity Local => LocalIdentity.Value;
}

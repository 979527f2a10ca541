namespace FederatedFunctions.Core.Silos;

/// <summary>The identity of the code that trains on silo data: a name and the SHA-256 of its binary (or of its container image).</summary>
/// <remarks>
/// Eyes-off runs may use only trainers whose identity and hash are in the orchestrator's allow-list
/// (<c>Trust:ApprovedTrainers</c>). Each compute kind declares the trainer it runs: the in-process and separate-process
/// computes run this build's trainer, whose hash is that of its assembly file; an Azure ML compute runs the container image
/// its registry entry pins by digest.
/// </remarks>
/// <param name="Id">Trainer name.</param>
/// <param name="Sha256">Lowercase hex SHA-256 of the trainer's binary or image.</param>
public sealed record TrainerIdentity(string Id, string Sha256);

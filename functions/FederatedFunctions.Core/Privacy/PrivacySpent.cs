namespace FederatedFunctions.Core.Privacy;

/// <summary>An (ε, δ) guarantee read off an RDP curve, and the Rényi order that gave it.</summary>
/// <param name="Epsilon">ε in nats (natural logarithm), never negative; +∞ when no order gives a finite bound.</param>
/// <param name="Order">The Rényi order α that minimised ε; NaN when <paramref name="Epsilon"/> is +∞.</param>
/// <remarks>
/// The δ is the caller's: the guarantee is "(Epsilon, δ)-DP for the δ that was asked for".
/// An <see cref="Order"/> equal to the smallest or largest order of the list means the list was
/// too narrow and a wider one could give a smaller ε.
/// </remarks>
public readonly record struct PrivacySpent(double Epsilon, double Order);

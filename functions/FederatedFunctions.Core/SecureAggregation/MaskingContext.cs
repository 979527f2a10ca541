namespace FederatedFunctions.Core.SecureAggregation;

/// <summary>What a set of pairwise masks is for: one attempt of one round of one run.</summary>
/// <remarks>
/// Every pairwise seed is derived with this context in its HKDF info, so masks of different runs, rounds or
/// attempts are independent even if a key pair were reused by mistake; <see cref="MaskingKeys"/> additionally
/// refuses to serve a second context. A redo after a dropout is the same round with <see cref="Attempt"/> + 1.
/// The context holds no secret and may travel through orchestration history.
/// </remarks>
public sealed record MaskingContext
{
    /// <summary>Creates a context.</summary>
    /// <exception cref="ArgumentException">Empty run id, or a negative round or attempt.</exception>
    public MaskingContext(string runId, int round, int attempt)
    {
        ArgumentException.ThrowIfNullOrEmpty(runId);
        ArgumentOutOfRangeException.ThrowIfNegative(round);
        ArgumentOutOfRangeException.ThrowIfNegative(attempt);
        RunId = runId;
        Round = round;
        Attempt = attempt;
    }

    /// <summary>The run id.</summary>
    public string RunId { get; }

    /// <summary>The round number.</summary>
    public int Round { get; }

    /// <summary>The attempt within the round, 0 for the first; each redo after a dropout adds one.</summary>
    public int Attempt { get; }

    /// <summary>The same run and round, next attempt.</summary>
    public MaskingContext NextAttempt() => new(RunId, Round, checked(Attempt + 1));
}

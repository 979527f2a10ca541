using FederatedFunctions.Core.Privacy;

namespace FederatedFunctions.Core.Tests.Privacy;

/// <summary>
/// Every expected value below is published by TensorFlow Privacy (tensorflow/privacy) or Opacus
/// (pytorch/opacus), in their tests or documentation; the source is named beside each value.
/// ε values are checked to within 1%. Where a source reports ε by the original RDP → DP conversion,
/// the test uses <see cref="RdpAccountant.GetPrivacySpentClassic"/>.
/// </summary>
public sealed class RdpAccountantTests
{
    private const double OnePercent = 0.01;

    // The orders of TF Privacy's compute_dp_sgd_privacy (tensorflow_privacy/privacy/analysis/compute_dp_sgd_privacy.py
    // and compute_dp_sgd_privacy_lib.py): [1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5] + range(5, 64) + [128, 256, 512].
    private static readonly double[] TfDpSgdOrders =
    [
        1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5,
        .. Enumerable.Range(5, 59).Select(i => (double)i),
        128, 256, 512,
    ];

    private static void AssertWithin(double expected, double actual, double relative)
    {
        Assert.True(
            Math.Abs(actual - expected) <= relative * Math.Abs(expected),
            $"expected {expected:R} within {relative:P2}, got {actual:R} (relative error {Math.Abs(actual / expected - 1):E2})");
    }

    // TF Privacy's compute_dp_sgd_privacy: q = batch / n, steps = ceil(epochs · n / batch).
    private static (double Q, int Steps) DpSgd(int n, int batchSize, double epochs) =>
        ((double)batchSize / n, (int)Math.Ceiling(epochs * n / batchSize));

    // ---- Opacus ---------------------------------------------------------------------------------

    [Fact]
    public void GetEpsilon_OpacusRdpAccountantTest_Matches7Point329()
    {
        // pytorch/opacus opacus/tests/accountants_test.py, test_rdp_accountant:
        // noise_multiplier 1.5, sample_rate 0.04, steps int(90 / 0.04) = 2250, delta 1e-5,
        // RDPAccountant defaults (DEFAULT_ALPHAS, Balle et al. conversion) → 7.32911117143.
        var epsilon = RdpAccountant.GetEpsilon(q: 0.04, noiseMultiplier: 1.5, delta: 1e-5, steps: 2250);

        AssertWithin(7.32911117143, epsilon, OnePercent);
    }

    [Theory]
    // pytorch/opacus opacus/tests/accountants_test.py, test_get_noise_multiplier_rdp_epochs: for target ε 8,
    // δ 1e-5, sample_rate 0.04, 90 epochs (2250 steps), get_noise_multiplier returns σ = 1.416 (4 places),
    // the σ its bisection (epsilon_tolerance 0.01) finds with 7.99 < ε(σ) < 8.
    [InlineData(1.416, 2250)]
    // Same file, test_get_noise_multiplier_rdp_steps: 2000 steps → σ = 1.3562.
    [InlineData(1.3562, 2000)]
    public void GetEpsilon_OpacusNoiseMultiplierForEpsilon8_IsEpsilon8(double noiseMultiplier, int steps)
    {
        var epsilon = RdpAccountant.GetEpsilon(q: 0.04, noiseMultiplier, delta: 1e-5, steps);

        AssertWithin(8.0, epsilon, OnePercent);
    }

    [Fact]
    public void GetPrivacySpent_OpacusScriptExample_Matches2Point39AtOrder5()
    {
        // pytorch/opacus opacus/scripts/compute_dp_sgd_privacy.py, module docstring:
        // --epochs=3 --delta=1e-5 --sample-rate 0.01 --noise-multiplier 1.0 --alphas 2 5 10 20 100
        // → "iterated over 300 steps ... epsilon = 2.39 ... The optimal alpha is 5.0".
        double[] orders = [2, 5, 10, 20, 100];
        var rdp = RdpAccountant.ComputeRdp(0.01, 1.0, 300, orders);

        var spent = RdpAccountant.GetPrivacySpent(orders, rdp, 1e-5);

        AssertWithin(2.39, spent.Epsilon, OnePercent);
        Assert.Equal(5.0, spent.Order);
    }

    [Fact]
    public void GetPrivacySpent_OpacusDocstringComposition_Matches0Point336AtOrder23()
    {
        // pytorch/opacus opacus/accountants/analysis/rdp.py, module docstring: parameters
        // [(1e-5, 1.0, 10), (1e-4, 3.0, 4)] as (q, sigma, steps), orders range(2, 33), delta 1e-5 → (0.336, 23).
        double[] orders = [.. Enumerable.Range(2, 31).Select(i => (double)i)];
        var first = RdpAccountant.ComputeRdp(1e-5, 1.0, 10, orders);
        var second = RdpAccountant.ComputeRdp(1e-4, 3.0, 4, orders);
        var rdp = first.Zip(second, (a, b) => a + b).ToArray();

        var spent = RdpAccountant.GetPrivacySpent(orders, rdp, 1e-5);

        AssertWithin(0.336, spent.Epsilon, OnePercent);
        Assert.Equal(23.0, spent.Order);
    }

    [Fact]
    public void GetPrivacySpentClassic_Opacus0xScriptExample_Matches2Point95()
    {
        // pytorch/opacus opacus/scripts/compute_dp_sgd_privacy.py, module docstring of the 0.x version (which used
        // opacus.privacy_analysis and its original conversion eps = rdp − log(δ)/(α − 1)):
        // --dataset-size=60000 --batch-size=256 --noise_multiplier=1.12 --epochs=60 --delta=1e-5 --a 10 20 100
        // → (2.95, 1e-5); that script took steps = epochs · ceil(60000 / 256) = 14100.
        double[] orders = [10, 20, 100];
        var rdp = RdpAccountant.ComputeRdp(256.0 / 60000, 1.12, 60 * 235, orders);

        var spent = RdpAccountant.GetPrivacySpentClassic(orders, rdp, 1e-5);

        AssertWithin(2.95, spent.Epsilon, OnePercent);
    }

    [Fact]
    public void DefaultOrders_AreOpacusDefaultAlphas()
    {
        // pytorch/opacus opacus/accountants/rdp.py: DEFAULT_ALPHAS = [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)).
        var orders = RdpAccountant.DefaultOrders;

        Assert.Equal(99 + 52, orders.Count);
        Assert.Equal(1.1, orders[0]);
        Assert.Equal(10.9, orders[98]);
        Assert.Equal(12.0, orders[99]);
        Assert.Equal(63.0, orders[^1]);
        Assert.Throws<NotSupportedException>(() => ((IList<double>)orders)[0] = 2.0);
    }

    // ---- TF Privacy: compute_dp_sgd_privacy ---------------------------------------------------

    // tensorflow/privacy tensorflow_privacy/privacy/analysis/compute_dp_sgd_privacy_test.py, test_compute_dp_sgd_privacy,
    // current version (improved conversion, the one Opacus uses): (n, batch, σ, epochs, δ) → (ε, order).
    [Theory]
    [InlineData(60000, 150, 1.3, 15, 1e-5, 0.7242234026109595, 19.0)]        // 'Test0'
    [InlineData(100000, 100, 1.0, 30, 1e-7, 1.4154988495444845, 13.0)]      // 'Test1'
    [InlineData(100000000, 1024, 0.1, 10, 1e-7, 5907982.31138195, 1.25)]    // 'Test2'
    public void GetPrivacySpent_TfComputeDpSgdPrivacyTest_Matches(
        int n, int batchSize, double sigma, double epochs, double delta, double expectedEpsilon, double expectedOrder)
    {
        var (q, steps) = DpSgd(n, batchSize, epochs);
        var rdp = RdpAccountant.ComputeRdp(q, sigma, steps, TfDpSgdOrders);

        var spent = RdpAccountant.GetPrivacySpent(TfDpSgdOrders, rdp, delta);

        AssertWithin(expectedEpsilon, spent.Epsilon, OnePercent);
        Assert.Equal(expectedOrder, spent.Order);
    }

    // The same test's values before TF Privacy changed its conversion (an earlier version of
    // compute_dp_sgd_privacy_test.py, with the original conversion eps = rdp − log(δ)/(α − 1)).
    [Theory]
    [InlineData(60000, 150, 1.3, 15, 1e-5, 0.941870567, 19.0)]              // 'Test0'
    [InlineData(100000, 100, 1.0, 30, 1e-7, 1.70928734, 13.0)]              // 'Test1'
    [InlineData(100000000, 1024, 0.1, 10, 1e-7, 5907984.81339406, 1.25)]    // 'Test2'
    public void GetPrivacySpentClassic_TfComputeDpSgdPrivacyTestBeforeConversionChange_Matches(
        int n, int batchSize, double sigma, double epochs, double delta, double expectedEpsilon, double expectedOrder)
    {
        var (q, steps) = DpSgd(n, batchSize, epochs);
        var rdp = RdpAccountant.ComputeRdp(q, sigma, steps, TfDpSgdOrders);

        var spent = RdpAccountant.GetPrivacySpentClassic(TfDpSgdOrders, rdp, delta);

        AssertWithin(expectedEpsilon, spent.Epsilon, OnePercent);
        Assert.Equal(expectedOrder, spent.Order);
    }

    [Fact]
    public void GetPrivacySpentClassic_TfMnistExample_Matches2Point92()
    {
        // tensorflow/privacy tensorflow_privacy/privacy/analysis/compute_dp_sgd_privacy.py, module docstring:
        // --N=60000 --batch_size=256 --noise_multiplier=1.12 --epochs=60 --delta=1e-5
        // "satisfies (2.92, 1e-5)-DP" (that version used the original conversion). The same 2.92 is the
        // MNIST default row of tutorials/README.md. (The σ of that tutorial is 1.12, not 1.1.)
        var (q, steps) = DpSgd(60000, 256, 60);
        var rdp = RdpAccountant.ComputeRdp(q, 1.12, steps, TfDpSgdOrders);

        var spent = RdpAccountant.GetPrivacySpentClassic(TfDpSgdOrders, rdp, 1e-5);

        AssertWithin(2.92, spent.Epsilon, OnePercent);
    }

    // ---- TF Privacy: rdp_accountant_test.py ---------------------------------------------------

    [Fact]
    public void GetPrivacySpentClassic_TfCheckComposition_Matches8Point51AtOrder2Point5()
    {
        // tensorflow/privacy tensorflow_privacy/privacy/analysis/rdp_accountant_test.py, test_check_composition:
        // RDP of (q 1e-4, σ 0.4, 40000 steps) plus (q 0.1, σ 2, 100 steps) over the orders below, δ 1e-5 →
        // eps 8.509656 at order 2.5 "with the old RDP -> approx DP conversion" (and an upper bound on the new one).
        double[] orders = [1.25, 1.5, 1.75, 2, 2.5, 3, 4, 5, 6, 7, 8, 10, 12, 14, 16, 20, 24, 28, 32, 64, 256];
        var first = RdpAccountant.ComputeRdp(1e-4, 0.4, 40000, orders);
        var second = RdpAccountant.ComputeRdp(0.1, 2, 100, orders);
        var rdp = first.Zip(second, (a, b) => a + b).ToArray();

        var classic = RdpAccountant.GetPrivacySpentClassic(orders, rdp, 1e-5);
        var improved = RdpAccountant.GetPrivacySpent(orders, rdp, 1e-5);

        AssertWithin(8.509656, classic.Epsilon, OnePercent);
        Assert.Equal(2.5, classic.Order);
        Assert.True(improved.Epsilon <= 8.509656);
    }

    [Fact]
    public void GetPrivacySpent_TfConstantRdp_Matches1Point3278AtLargestOrder()
    {
        // tensorflow/privacy rdp_accountant_test.py, test_get_privacy_spent_check_target_delta:
        // orders range(2, 33), RDP 1.1 at every order (pure DP), δ 1e-5 → eps 1.32783806176 at order 32.
        double[] orders = [.. Enumerable.Range(2, 31).Select(i => (double)i)];
        var rdp = Enumerable.Repeat(1.1, orders.Length).ToArray();

        var spent = RdpAccountant.GetPrivacySpent(orders, rdp, 1e-5);

        AssertWithin(1.32783806176, spent.Epsilon, OnePercent);
        Assert.Equal(32.0, spent.Order);
    }

    [Fact]
    public void GetPrivacySpent_TfGaussianCalibratedForEpsilon1_IsEpsilon1()
    {
        // tensorflow/privacy rdp_accountant_test.py, test_get_privacy_spent_check_target_delta, second part:
        // compute_rdp(1, 4.530877117, 1, orders) on orders 0.001·i, "Scale is chosen to obtain exactly (1,1e-6)-DP".
        // The test's grid starts at i = 1000 (α = 1), where the conversion is undefined; ours starts at 1001.
        double[] orders = [.. Enumerable.Range(1001, 100000 - 1001).Select(i => 0.001 * i)];
        var rdp = RdpAccountant.ComputeRdp(1, 4.530877117, 1, orders);

        var spent = RdpAccountant.GetPrivacySpent(orders, rdp, 1e-6);

        AssertWithin(1.0, spent.Epsilon, OnePercent);
    }

    [Fact]
    public void ComputeRdp_TfScalarCase_Matches0Point07737()
    {
        // tensorflow/privacy rdp_accountant_test.py, test_compute_rdp_scalar: compute_rdp(0.1, 2, 10, 5) ≈ 0.07737 (5 places).
        var rdp = RdpAccountant.ComputeRdp(0.1, 2, 10, [5.0]);

        AssertWithin(0.07737, rdp[0], OnePercent);
    }

    [Fact]
    public void ComputeRdp_TfSequenceCase_MatchesAtFractionalIntegerAndInfiniteOrders()
    {
        // tensorflow/privacy rdp_accountant_test.py, test_compute_rdp_sequence: compute_rdp(0.01, 2.5, 50,
        // [1.5, 2.5, 5, 50, 100, inf]) ≈ [0.00065, 0.001085, 0.00218075, 0.023846, 167.416307, inf] (delta 1e-5).
        // 1.5 and 2.5 exercise the fractional-order series; 5, 50 and 100 the integer sum.
        double[] orders = [1.5, 2.5, 5, 50, 100, double.PositiveInfinity];
        double[] expected = [0.00065, 0.001085, 0.00218075, 0.023846, 167.416307];

        var rdp = RdpAccountant.ComputeRdp(0.01, 2.5, 50, orders);

        for (var k = 0; k < expected.Length; k++)
        {
            AssertWithin(expected[k], rdp[k], OnePercent);
            Assert.Equal(expected[k], rdp[k], 1e-5);
        }

        Assert.Equal(double.PositiveInfinity, rdp[^1]);
    }

    [Fact]
    public void ComputeRdp_NoData_IsZero()
    {
        // tensorflow/privacy rdp_accountant_test.py, test_compute_rdp_no_data: compute_rdp(0, 10, 1, 20) == 0.
        Assert.Equal(0.0, RdpAccountant.ComputeRdp(0, 10, 1, [20.0])[0]);
    }

    [Fact]
    public void ComputeRdp_NoSampling_IsOrderOverTwoSigmaSquared()
    {
        // tensorflow/privacy rdp_accountant_test.py, test_compute_rdp_no_sampling: q = 1, "RDP = alpha/2 * sigma^2",
        // compute_rdp(1, 10, 1, 20) == 0.1.
        Assert.Equal(0.1, RdpAccountant.ComputeRdp(1, 10, 1, [20.0])[0], 1e-15);
    }

    // ---- Properties the feature relies on -----------------------------------------------------

    [Fact]
    public void ComputeRdp_Steps_ComposeLinearly()
    {
        var one = RdpAccountant.ComputeRdp(0.04, 1.5, 1, RdpAccountant.DefaultOrders);
        var many = RdpAccountant.ComputeRdp(0.04, 1.5, 2250, RdpAccountant.DefaultOrders);

        for (var k = 0; k < one.Length; k++)
        {
            Assert.Equal(one[k] * 2250, many[k]);
        }
    }

    [Fact]
    public void ComputeRdp_FractionalOrderBetweenIntegers_LiesBetweenTheirRdp()
    {
        // RDP is non-decreasing in the order (Mironov 2017, Proposition 9), so the fractional series
        // must land between its integer neighbours' exact sums.
        var rdp = RdpAccountant.ComputeRdp(0.01, 1.1, 1, [7.0, 7.5, 8.0]);

        Assert.True(rdp[0] <= rdp[1] && rdp[1] <= rdp[2], string.Join(", ", rdp));
    }

    [Fact]
    public void ComputeRdp_NoNoise_IsInfinite()
    {
        Assert.Equal(double.PositiveInfinity, RdpAccountant.ComputeRdp(0.1, 0, 1, [2.0])[0]);
    }

    [Fact]
    public void ComputeRdp_ZeroSteps_IsZeroEvenWithoutNoise()
    {
        Assert.Equal([0.0, 0.0], RdpAccountant.ComputeRdp(0.1, 0, 0, [2.0, 3.5]));
    }

    [Theory]
    [InlineData(-0.1, 1.0)]
    [InlineData(1.1, 1.0)]
    [InlineData(double.NaN, 1.0)]
    [InlineData(0.1, -1.0)]
    [InlineData(0.1, double.PositiveInfinity)]
    public void ComputeRdp_InvalidMechanism_Throws(double q, double noiseMultiplier)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => RdpAccountant.ComputeRdp(q, noiseMultiplier, 1, [2.0]));
    }

    [Theory]
    [InlineData(1.0)]
    [InlineData(0.5)]
    [InlineData(double.NaN)]
    public void ComputeRdp_OrderNotAboveOne_Throws(double order)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => RdpAccountant.ComputeRdp(0.1, 1, 1, [2.0, order]));
    }

    [Fact]
    public void GetPrivacySpent_MismatchedLengths_Throws()
    {
        Assert.Throws<ArgumentException>(() => RdpAccountant.GetPrivacySpent([2.0, 3.0], [0.1], 1e-5));
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(1.0)]
    [InlineData(-1e-5)]
    public void GetPrivacySpent_DeltaOutsideOpenUnitInterval_Throws(double delta)
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => RdpAccountant.GetPrivacySpent([2.0], [0.1], delta));
    }

    [Fact]
    public void GetPrivacySpent_OnlyInfiniteRdp_IsInfiniteWithNoOrder()
    {
        var spent = RdpAccountant.GetPrivacySpent([2.0, 3.0], [double.PositiveInfinity, double.PositiveInfinity], 1e-5);

        Assert.Equal(double.PositiveInfinity, spent.Epsilon);
        Assert.True(double.IsNaN(spent.Order));
    }

    [Fact]
    public void GetPrivacySpent_IsNeverLooserThanClassic()
    {
        var rdp = RdpAccountant.ComputeRdp(0.04, 1.5, 2250, RdpAccountant.DefaultOrders);

        var improved = RdpAccountant.GetPrivacySpent(RdpAccountant.DefaultOrders, rdp, 1e-5);
        var classic = RdpAccountant.GetPrivacySpentClassic(RdpAccountant.DefaultOrders, rdp, 1e-5);

        Assert.True(improved.Epsilon < classic.Epsilon);
    }

    [Fact]
    public void GetEpsilon_MoreSteps_NeverDecreases()
    {
        var previous = 0.0;
        foreach (var steps in new[] { 1, 10, 100, 1000, 2250, 5000 })
        {
            var epsilon = RdpAccountant.GetEpsilon(0.04, 1.5, 1e-5, steps);
            Assert.True(epsilon >= previous, $"ε({steps}) = {epsilon} < {previous}");
            previous = epsilon;
        }
    }

    [Fact]
    public void MaxStepsWithinBudget_OpacusReference_BracketsStep2250()
    {
        // Opacus's test_rdp_accountant publishes ε = 7.32911117143 after 2250 steps (q 0.04, σ 1.5, δ 1e-5).
        // A budget 1% above it must allow those 2250 steps; 1% below it must stop before them.
        const double published = 7.32911117143;

        var above = RdpAccountant.MaxStepsWithinBudget(0.04, 1.5, 1e-5, published * 1.01, maxSteps: 10_000);
        var below = RdpAccountant.MaxStepsWithinBudget(0.04, 1.5, 1e-5, published * 0.99, maxSteps: 10_000);

        Assert.InRange(above, 2250, 10_000 - 1);
        Assert.InRange(below, 1, 2249);
    }

    [Fact]
    public void MaxStepsWithinBudget_Result_IsTheLastStepWithinBudget()
    {
        const double budget = 3.0;

        var steps = RdpAccountant.MaxStepsWithinBudget(0.01, 1.1, 1e-5, budget, maxSteps: 1_000_000);

        Assert.True(RdpAccountant.GetEpsilon(0.01, 1.1, 1e-5, steps) <= budget);
        Assert.True(RdpAccountant.GetEpsilon(0.01, 1.1, 1e-5, steps + 1) > budget);
    }

    [Fact]
    public void MaxStepsWithinBudget_BudgetNeverReached_IsMaxSteps()
    {
        Assert.Equal(50, RdpAccountant.MaxStepsWithinBudget(0.01, 1.1, 1e-5, 100.0, maxSteps: 50));
    }

    [Fact]
    public void MaxStepsWithinBudget_OneStepTooMany_IsZero()
    {
        // One step with q = 1 and σ = 0.5 costs far more than ε = 0.1.
        Assert.Equal(0, RdpAccountant.MaxStepsWithinBudget(1.0, 0.5, 1e-5, 0.1, maxSteps: 100));
    }

    [Fact]
    public void MaxStepsWithinBudget_NegativeBudget_Throws()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => RdpAccountant.MaxStepsWithinBudget(0.01, 1.1, 1e-5, -1, 100));
    }
}

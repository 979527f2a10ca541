using FederatedFunctions.Core.Tensors;
using static FederatedFunctions.Ml.Tests.Tensors;

namespace FederatedFunctions.Ml.Tests;

public sealed class StreamingAggregatorTests
{
    private static IReadOnlyList<NamedTensor> Template() => [F32("w", [0f, 0f], 2)];

    [Fact]
    public void Result_TwoUpdatesWithCounts120And80_EqualsHandComputedAverage()
    {
        using var aggregator = new StreamingAggregator(Template());
        aggregator.Add([F32("w", [1f, 2f], 2)], 120);
        aggregator.Add([F32("w", [3f, 4f], 2)], 80);

        var result = aggregator.Result();

        // [1,2]·120/200 + [3,4]·80/200 = [0.6+1.2, 1.2+1.6] = [1.8, 2.8]
        var w = Floats(result.Find("w"));
        Assert.Equal(1.8f, w[0], 1e-6f);
        Assert.Equal(2.8f, w[1], 1e-6f);
        Assert.Equal(2, aggregator.Count);
        Assert.Equal(200, aggregator.TotalWeight);
    }

    [Fact]
    public void Result_FiveKeysAndUnequalCounts_EachTensorIsItsHandComputedAverage()
    {
        IReadOnlyList<NamedTensor> Update(float a) =>
        [
            F32("layers.0.weight", [a, 2 * a, 3 * a, 4 * a], 2, 2),
            F32("layers.0.bias", [a, -a], 2),
            F32("layers.2.weight", [10 * a, 0, -10 * a], 1, 3),
            F32("layers.2.bias", [a], 1),
            F32("scale", [a + 1], 1),
        ];

        using var aggregator = new StreamingAggregator(Update(0));
        aggregator.Add(Update(1), 10);
        aggregator.Add(Update(2), 30);
        aggregator.Add(Update(5), 60);

        var result = aggregator.Result();

        // a = (1·10 + 2·30 + 5·60) / 100 = 370 / 100 = 3.7
        const float A = 3.7f;
        Assert.Equal(["layers.0.bias", "layers.0.weight", "layers.2.bias", "layers.2.weight", "scale"], result.Select(t => t.Name));
        AssertClose([A, 2 * A, 3 * A, 4 * A], Floats(result.Find("layers.0.weight")));
        AssertClose([A, -A], Floats(result.Find("layers.0.bias")));
        AssertClose([10 * A, 0, -10 * A], Floats(result.Find("layers.2.weight")));
        AssertClose([A], Floats(result.Find("layers.2.bias")));
        AssertClose([A + 1], Floats(result.Find("scale")));
        Assert.Equal([1L, 3], result.Find("layers.2.weight").Shape);
        Assert.All(result, t => Assert.Equal(TensorDType.F32, t.DType));
    }

    // Over a million floats (added in parts on several threads), lengths that leave a scalar tail and that do not split
    // evenly over 2, 3 or 4 parts, and the second update a slice in the middle of a larger array, as a tensor parsed out of
    // a downloaded safetensors file is.
    [Theory]
    [InlineData((1 << 20) + 1)]
    [InlineData((1 << 20) + 13)]
    [InlineData((1 << 20) + 35)]
    public void Result_LargeTensorsAddedOnSeveralThreads_EqualTheElementwiseFloatFormula_AndAnUpdateInTheMiddleOfItsBuffer(int N)
    {
        var a = new float[N];
        var b = new float[N];
        var random = new Random(5);
        for (var i = 0; i < N; i++)
        {
            a[i] = (float)(random.NextDouble() * 2 - 1);
            b[i] = (float)(random.NextDouble() * 200 - 100);
        }

        var padded = new byte[(N + 3) * sizeof(float)];
        System.Runtime.InteropServices.MemoryMarshal.AsBytes(b.AsSpan()).CopyTo(padded.AsSpan(8));
        using var aggregator = new StreamingAggregator([F32("w", new float[N], N)]);
        aggregator.Add([F32("w", a, N)], 3);
        aggregator.Add([new NamedTensor("w", TensorDType.F32, [N], padded.AsMemory(8, N * sizeof(float)))], 7);

        var w = Floats(aggregator.Result().Find("w"));

        for (var i = 0; i < N; i++)
        {
            var sum = MathF.FusedMultiplyAdd(b[i], 7f, MathF.FusedMultiplyAdd(a[i], 3f, 0f));
            if (sum / 10f != w[i])
            {
                Assert.Fail($"element {i} of {N}: expected {sum / 10f}, got {w[i]}");
            }
        }
    }

    [Fact]
    public void Result_AddOrderReversed_SameWithin1e6()
    {
        var random = new Random(7);
        var updates = Enumerable.Range(0, 6)
            .Select(_ => (Update: (IReadOnlyList<NamedTensor>)[F32("w", Enumerable.Range(0, 100).Select(_ => (float)random.NextDouble() * 4 - 2).ToArray(), 100)], Weight: (double)random.Next(1, 500)))
            .ToArray();

        float[] Aggregate(IEnumerable<(IReadOnlyList<NamedTensor> Update, double Weight)> order)
        {
            using var aggregator = new StreamingAggregator(updates[0].Update);
            foreach (var (update, weight) in order)
            {
                aggregator.Add(update, weight);
            }

            return Floats(aggregator.Result().Find("w"));
        }

        var forward = Aggregate(updates);
        var backward = Aggregate(updates.Reverse());

        for (var i = 0; i < forward.Length; i++)
        {
            Assert.True(Math.Abs(forward[i] - backward[i]) <= 1e-6, $"element {i}: {forward[i]} vs {backward[i]}");
        }
    }

    [Fact]
    public void Validate_F64InsteadOfF32_RejectedAsDTypeMismatch()
    {
        using var aggregator = new StreamingAggregator(Template());

        var check = aggregator.Validate([F64("w", [1.0, 2.0], 2)]);

        Assert.False(check.Accepted);
        Assert.Equal("dtype-mismatch", check.Reason);
        Assert.Contains("'w'", check.Detail);
    }

    [Fact]
    public void Validate_DifferentShape_RejectedAsShapeMismatch()
    {
        using var aggregator = new StreamingAggregator(Template());

        var check = aggregator.Validate([F32("w", [1f, 2f], 1, 2)]);

        Assert.False(check.Accepted);
        Assert.Equal("shape-mismatch", check.Reason);
    }

    [Fact]
    public void Validate_BytesShorterThanShape_RejectedAsShapeMismatch()
    {
        using var aggregator = new StreamingAggregator(Template());

        var check = aggregator.Validate([new NamedTensor("w", TensorDType.F32, [2], new byte[4])]);

        Assert.Equal("shape-mismatch", check.Reason);
    }

    [Fact]
    public void Validate_MissingKey_RejectedAsMissingTensor()
    {
        using var aggregator = new StreamingAggregator([F32("a", [0f], 1), F32("b", [0f], 1)]);

        var check = aggregator.Validate([F32("a", [1f], 1)]);

        Assert.Equal("missing-tensor", check.Reason);
        Assert.Contains("'b'", check.Detail);
    }

    [Fact]
    public void Validate_ExtraKey_RejectedAsUnexpectedTensor()
    {
        using var aggregator = new StreamingAggregator(Template());

        var check = aggregator.Validate([F32("w", [1f, 2f], 2), F32("extra", [1f], 1)]);

        Assert.Equal("unexpected-tensor", check.Reason);
        Assert.Contains("'extra'", check.Detail);
    }

    [Fact]
    public void Validate_DuplicateKey_RejectedAsUnexpectedTensor()
    {
        using var aggregator = new StreamingAggregator(Template());

        var check = aggregator.Validate([F32("w", [1f, 2f], 2), F32("w", [1f, 2f], 2)]);

        Assert.Equal("unexpected-tensor", check.Reason);
    }

    [Theory]
    [InlineData(float.NaN)]
    [InlineData(float.PositiveInfinity)]
    [InlineData(float.NegativeInfinity)]
    public void Validate_NonFiniteValue_RejectedAsNonFinite(float bad)
    {
        var values = Enumerable.Range(0, 37).Select(i => (float)i).ToArray();
        values[29] = bad; // past the first vector, so the vectorised scan is exercised
        using var aggregator = new StreamingAggregator([F32("w", new float[37], 37)]);

        var check = aggregator.Validate([F32("w", values, 37)]);

        Assert.Equal("non-finite", check.Reason);
        Assert.Contains("element 29", check.Detail);
    }

    [Fact]
    public void Validate_NonFiniteF64_RejectedAsNonFinite()
    {
        using var aggregator = new StreamingAggregator([F64("d", [0, 0, 0], 3)]);

        Assert.Equal("non-finite", aggregator.Validate([F64("d", [1, double.NaN, 0], 3)]).Reason);
        Assert.True(aggregator.Validate([F64("d", [1, double.MaxValue, -0.0], 3)]).Accepted);
    }

    [Fact]
    public void Add_RejectedUpdate_ThrowsAndLeavesStateUnchanged()
    {
        using var aggregator = new StreamingAggregator(Template());
        aggregator.Add([F32("w", [1f, 2f], 2)], 1);

        var ex = Assert.Throws<ArgumentException>(() => aggregator.Add([F32("w", [float.NaN, 2f], 2)], 1));

        Assert.Contains("non-finite", ex.Message);
        Assert.Equal(1, aggregator.Count);
        Assert.Equal([1f, 2f], Floats(aggregator.Result().Find("w")));
    }

    [Fact]
    public void TryAdd_RejectedThenAccepted_ReturnsVerdictAndAddsOnlyAccepted()
    {
        using var aggregator = new StreamingAggregator(Template());

        var rejected = aggregator.TryAdd([F32("w", [1f, float.PositiveInfinity], 2)], 5);
        var accepted = aggregator.TryAdd([F32("w", [1f, 2f], 2)], 5);

        Assert.Equal("non-finite", rejected.Reason);
        Assert.True(accepted.Accepted);
        Assert.Equal(1, aggregator.Count);
        Assert.Equal(5, aggregator.TotalWeight);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void TryAdd_NonFiniteDeepInALargeTensorOfTheSecondTensor_RefusedWithItsFirstIndexAndTheSumIsBitForBitAsBefore(bool asFirst)
    {
        // Tensors of a million floats and more are added in parts on several threads; the bad values sit in two parts of
        // the second tensor (in name order), after the first tensor was already written into its buffer.
        const int N = (1 << 20) + 13;
        var template = new[] { F32("a", new float[N], N), F32("b", new float[N], N) };
        float[] Values(int seed) => Enumerable.Range(0, N).Select(i => (float)Math.Sin(i * 0.001 + seed)).ToArray();
        NamedTensor[] Update(int seed) => [F32("a", Values(seed), N), F32("b", Values(seed + 1), N)];
        var bad = Values(9);
        bad[N - 7] = float.NaN;
        bad[N / 2 + 3] = float.NegativeInfinity;
        NamedTensor[] poisoned = [F32("a", Values(8), N), F32("b", bad, N)];

        using var clean = new StreamingAggregator(template);
        clean.Add(Update(1), 3);
        clean.Add(Update(2), 5);

        using var aggregator = new StreamingAggregator(template);
        var refusals = new List<UpdateCheck>();
        if (asFirst)
        {
            refusals.Add(aggregator.TryAdd(poisoned, 7));
        }

        aggregator.Add(Update(1), 3);
        if (!asFirst)
        {
            refusals.Add(aggregator.TryAdd(poisoned, 7));
        }

        aggregator.Add(Update(2), 5);

        var refusal = Assert.Single(refusals);
        Assert.Equal("non-finite", refusal.Reason);
        Assert.Equal($"tensor 'b' has a NaN or infinite value at element {N / 2 + 3}", refusal.Detail);
        Assert.Equal(refusal.Detail, aggregator.Validate(poisoned).Detail);
        Assert.Equal((2, 8.0), (aggregator.Count, aggregator.TotalWeight));
        foreach (var (expected, actual) in clean.Result().Zip(aggregator.Result()))
        {
            Assert.True(expected.Data.Span.SequenceEqual(actual.Data.Span), $"tensor {expected.Name} differs");
        }
    }

    [Theory]
    [InlineData(new[] { 1, 1, 1, 1, 1, 1, 1 })]
    [InlineData(new[] { 7 })]
    [InlineData(new[] { 2, 5 })]
    [InlineData(new[] { 3, 4 })]
    [InlineData(new[] { 1, 6 })]
    [InlineData(new[] { 4, 2, 1 })]
    [InlineData(new[] { 2, 2, 3 })]
    public void TryAddAll_UpdatesInAnyWindows_GiveTheVerdictsOfOneAtATimeAndTheElementwiseFmaChainBitForBit(int[] windows)
    {
        // A tensor of a million floats and more (added in parts on several threads, in blocks, the last one short), a small
        // one, and a float64 one. Update 0 holds a NaN deep in the large tensor (so the first accepted update is not the
        // first offered), 2 has a wrong shape, 4 an infinity in its float64 tensor, 6 a NaN in its large tensor after
        // others were accepted (in a window after others, or alone); 1, 3 and 5 are added.
        const int N = (1 << 20) + 13;
        float[] Values(int seed) => Enumerable.Range(0, N).Select(i => (float)Math.Sin(i * 0.001 + seed) * (seed + 1)).ToArray();
        NamedTensor[] Update(int seed, float[]? large = null) =>
            [F32("large", large ?? Values(seed), N), F32("small", [seed * 1.1f, -seed * 0.7f, 0.5f * seed], 3), F64("d", [seed * 0.3, 2.0 * seed], 2)];
        float[] Poisoned(int seed, int at, float bad)
        {
            var values = Values(seed);
            values[at] = bad;
            return values;
        }

        var updates = new[]
        {
            new WeightedUpdate(Update(0, Poisoned(0, StreamingAggregator.Block * 100 + 5, float.NaN)), 2),
            new WeightedUpdate(Update(1), 3),
            new WeightedUpdate([F32("large", Values(2), N), F32("small", [1, 2], 2), F64("d", [2, 4], 2)], 5),
            new WeightedUpdate(Update(3), 7),
            new WeightedUpdate([.. Update(4).Take(2), F64("d", [4, double.PositiveInfinity], 2)], 11),
            new WeightedUpdate(Update(5), 13),
            new WeightedUpdate(Update(6, Poisoned(6, N - 3, float.NegativeInfinity)), 17),
        };

        using var aggregator = new StreamingAggregator(Update(0));
        var verdicts = new List<UpdateCheck>();
        var next = 0;
        foreach (var size in windows)
        {
            verdicts.AddRange(aggregator.TryAddAll(updates[next..(next + size)]));
            next += size;
        }

        Assert.Equal(updates.Length, next);
        Assert.Equal([false, true, false, true, false, true, false], verdicts.Select(v => v.Accepted));
        Assert.Equal($"tensor 'large' has a NaN or infinite value at element {StreamingAggregator.Block * 100 + 5}", verdicts[0].Detail);
        Assert.Equal("shape-mismatch", verdicts[2].Reason);
        Assert.Equal("tensor 'd' has a NaN or infinite value at element 1", verdicts[4].Detail);
        Assert.Equal($"tensor 'large' has a NaN or infinite value at element {N - 3}", verdicts[6].Detail);
        Assert.Equal((3, 23.0), (aggregator.Count, aggregator.TotalWeight));

        // The oracle: each float32 element's fma chain over the accepted updates, in order, from 0, divided by the total
        // weight; float64 summed in order and divided.
        var accepted = new[] { updates[1], updates[3], updates[5] };
        float[] Chain(string name)
        {
            var sum = new float[accepted[0].Tensors.Find(name).Data.Length / sizeof(float)];
            foreach (var u in accepted)
            {
                var x = Floats(u.Tensors.Find(name));
                for (var i = 0; i < sum.Length; i++)
                {
                    sum[i] = MathF.FusedMultiplyAdd(x[i], (float)u.Weight, sum[i]);
                }
            }

            return sum.Select(v => v / 23f).ToArray();
        }

        var result = aggregator.Result();
        Assert.True(Chain("large").AsSpan().SequenceEqual(Floats(result.Find("large"))), "the large tensor is not the fma chain's, bit for bit");
        Assert.Equal(Chain("small"), Floats(result.Find("small")));
        var d = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(result.Find("d").Data.Span).ToArray();
        Assert.Equal((3 * 0.3 + 7 * 0.9 + 13 * 1.5) / 23, d[0], 12);
        Assert.Equal((3 * 2.0 + 7 * 6.0 + 13 * 10.0) / 23, d[1], 12);
    }

    // A model whose float32 tensors cross many pieces, with small tensors of other dtypes between them (an int32 of odd
    // length puts the next tensor's bytes off an 8-byte boundary), as the safetensors writer lays it out.
    private static NamedTensor[] Mixed(int seed, int n = 10_000 + 3) =>
    [
        F32("a.large", [.. Enumerable.Range(0, n).Select(i => (float)Math.Sin(i * 0.01 + seed) * (seed + 1))], n),
        new("b.count", TensorDType.I32, [3], System.Runtime.InteropServices.MemoryMarshal.AsBytes(new[] { seed, 2 * seed, 3 }.AsSpan()).ToArray()),
        F64("c.d", [seed * 0.3, 2.0 * seed], 2),
        F32("d.small", [seed * 1.1f, -seed * 0.7f, 0.5f * seed], 3),
        F32("e.large", [.. Enumerable.Range(0, n / 2).Select(i => (float)Math.Cos(i * 0.02 - seed))], n / 2),
    ];

    private static (SafetensorsLayout Layout, byte[] Data) Streamable(NamedTensor[] update)
    {
        var file = Safetensors.Serialize(update);
        var start = (int)Safetensors.DataStart(file, file.Length);
        return (Safetensors.ParseLayout(file.AsMemory(0, start), file.Length), file[start..]);
    }

    // With `last`, the final window writes the mean as it sums: MeanInPlace then gives Result's bytes of one at a time.
    [Theory]
    [InlineData(64 * 1024, new[] { 5 }, false, false)]
    [InlineData(4096, new[] { 2, 3 }, false, false)]
    [InlineData(1000, new[] { 1, 4 }, false, false)]
    [InlineData(12, new[] { 3, 1, 1 }, false, false)]
    [InlineData(1000, new[] { 2, 3 }, true, false)]
    [InlineData(256 * 1024, new[] { 5 }, true, false)]
    [InlineData(64 * 1024, new[] { 5 }, false, true)]
    [InlineData(4096, new[] { 2, 3 }, false, true)]
    [InlineData(12, new[] { 3, 1, 1 }, false, true)]
    [InlineData(1000, new[] { 1, 4 }, true, true)]
    public async Task TryAddStreamedAsync_WindowsReadInPieces_GiveTheSumOfOneAtATimeBitForBit(int pieceBytes, int[] windows, bool inMemory, bool last)
    {
        var updates = Enumerable.Range(1, 5).Select(seed => (Tensors: Mixed(seed), Weight: seed * 1.5)).ToArray();
        using var expected = new StreamingAggregator(Mixed(0));
        foreach (var (tensors, weight) in updates)
        {
            expected.Add(tensors, weight);
        }

        using var aggregator = new StreamingAggregator(Mixed(0));
        var next = 0;
        var confirmed = 0;
        foreach (var size in windows)
        {
            var window = updates[next..(next + size)].Select(u => (File: Streamable(u.Tensors), u.Weight)).ToArray();
            // Streams that hand out at most 777 bytes a read, as a network stream may; or buffers in memory, read without a copy.
            var streams = window.Select(w => inMemory ? new MemoryStream(w.File.Data, 0, w.File.Data.Length, false, publiclyVisible: true) : new Trickle(w.File.Data, 777)).ToArray();
            var added = await aggregator.TryAddStreamedAsync(
                window[0].File.Layout,
                [.. window.Select((w, j) => new StreamedUpdate(streams[j], w.Weight))],
                _ =>
                {
                    // Every stream has been read to its end before the window is confirmed.
                    Assert.All(streams, s => Assert.Equal(s.Length, s.Position));
                    confirmed++;
                    return ValueTask.FromResult(true);
                },
                last && next + size == updates.Length,
                pieceBytes,
                default);
            Assert.True(added);
            next += size;
        }

        Assert.Equal(windows.Length, confirmed);
        Assert.Equal((expected.Count, expected.TotalWeight), (aggregator.Count, aggregator.TotalWeight));
        if (!last)
        {
            Assert.Equal(Concat(expected.Result()), Concat(aggregator.Result()));
            return;
        }

        // The last window counted, so the sums hold the mean before MeanInPlace is called: Result and adds refuse.
        Assert.Throws<InvalidOperationException>(() => aggregator.Result());
        Assert.Throws<InvalidOperationException>(() => aggregator.Add(Mixed(1), 1));
        Assert.Equal(Concat(expected.Result()), Concat(aggregator.MeanInPlace()));
    }

    public static TheoryData<string, bool, bool> Refusals()
    {
        var data = new TheoryData<string, bool, bool>();
        foreach (var refusal in new[] { "nan", "infinite-f64", "short", "unconfirmed", "other-shape" })
        {
            foreach (var last in new[] { false, true })
            {
                data.Add(refusal, true, last);
                data.Add(refusal, false, last);
            }
        }

        return data;
    }

    // A window refused, last or not, leaves the aggregator as it was and still taking updates.
    [Theory]
    [MemberData(nameof(Refusals))]
    public async Task TryAddStreamedAsync_AWindowRefusedAnywhere_AddsNothing_AndTheSumIsAsBefore(string refusal, bool afterAnUpdate, bool last)
    {
        // Before any update, the window sums straight into the accumulator, which the next window must then write whole.
        using var aggregator = new StreamingAggregator(Mixed(0));
        using var alone = new StreamingAggregator(Mixed(0));
        if (afterAnUpdate)
        {
            aggregator.Add(Mixed(1), 2);
            alone.Add(Mixed(1), 2);
        }

        var (layout, data) = Streamable(Mixed(2));
        var (_, second) = Streamable(Mixed(3));
        switch (refusal)
        {
            case "nan":
                // The last value of the second tensor of floats, after the first update's pieces were all added.
                BitConverter.TryWriteBytes(second.AsSpan(second.Length - 3 * sizeof(float) - 4), float.NaN);
                break;
            case "infinite-f64":
                var d = layout.Tensors.Single(t => t.Name == "c.d");
                BitConverter.TryWriteBytes(second.AsSpan((int)d.Begin), double.PositiveInfinity);
                break;
            case "short":
                second = second[..^4];
                break;
            case "other-shape":
                (layout, _) = Streamable([.. Mixed(2).Take(4), F32("e.large", new float[10], 10)]);
                break;
        }

        var added = await aggregator.TryAddStreamedAsync(
            layout,
            [new(new MemoryStream(data), 3), new(new MemoryStream(second), 4)],
            _ => ValueTask.FromResult(refusal != "unconfirmed"),
            last,
            1000,
            default);

        Assert.False(added);
        Assert.Equal((alone.Count, alone.TotalWeight), (aggregator.Count, aggregator.TotalWeight));
        if (afterAnUpdate)
        {
            Assert.Equal(Concat(alone.Result()), Concat(aggregator.Result()));
        }

        // The aggregator goes on: the next window is added to the sum as it was.
        Assert.True(await aggregator.TryAddStreamedAsync(layout.Tensors.Count == 5 && refusal != "other-shape" ? layout : Streamable(Mixed(2)).Layout, [new(new MemoryStream(Streamable(Mixed(2)).Data), 3)], _ => ValueTask.FromResult(true), false, 1000, default));
        alone.Add(Mixed(2), 3);
        Assert.Equal(Concat(alone.Result()), Concat(aggregator.Result()));
    }

    [Fact]
    public async Task TryAddStreamedAsync_AReadFailsHalfway_ThrowsItsException_AddsNothing_AndStaysUsable()
    {
        using var aggregator = new StreamingAggregator(Mixed(0));
        var (layout, data) = Streamable(Mixed(1));
        var failing = new Trickle(data, 500, failAfter: data.Length / 2);

        var ex = await Assert.ThrowsAsync<IOException>(() => aggregator.TryAddStreamedAsync(layout, [new(new MemoryStream(data), 1), new(failing, 1)], _ => ValueTask.FromResult(true), false, 1000, default));

        Assert.Equal("connection reset", ex.Message);
        Assert.Equal(0, aggregator.Count);
        Assert.True(await aggregator.TryAddStreamedAsync(layout, [new(new MemoryStream(data), 1)], _ => ValueTask.FromResult(true), false, 1000, default));
        using var alone = new StreamingAggregator(Mixed(0));
        alone.Add(Mixed(1), 1);
        Assert.Equal(Concat(alone.Result()), Concat(aggregator.Result()));
    }

    [Fact]
    public void PlanPieces_CutsLargeTensorsOnElements_AndGroupsSmallOnes()
    {
        var (layout, data) = Streamable(Mixed(1, n: 11));
        // a.large 44 bytes, b.count 12, c.d 16, d.small 12, e.large 20: 104 bytes.
        var pieces = StreamingAggregator.PlanPieces(layout, 30);

        // a.large is cut after 7 floats; its rest shares a piece with b.count, c.d with d.small; e.large fits one piece.
        Assert.Equal([(0L, 28), (28L, 28), (56L, 28), (84L, 20)], pieces);
        Assert.Equal(data.Length, pieces.Sum(p => p.Length));
    }

    // A read-only stream over bytes that returns at most `most` bytes a read, and can fail after some bytes.
    private sealed class Trickle(byte[] bytes, int most, int failAfter = int.MaxValue) : MemoryStream(bytes, writable: false)
    {
        public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
        {
            await Task.Yield();
            if (Position >= failAfter)
            {
                throw new IOException("connection reset");
            }

            return await base.ReadAsync(buffer[..Math.Min(most, buffer.Length)], cancellationToken);
        }
    }

    [Fact]
    public void TryAddAll_AWeightNotPositive_ThrowsAndAddsNone()
    {
        using var aggregator = new StreamingAggregator(Template());

        Assert.Throws<ArgumentOutOfRangeException>(() => aggregator.TryAddAll([new([F32("w", [1f, 2f], 2)], 1), new([F32("w", [1f, 2f], 2)], 0)]));
        Assert.Equal(0, aggregator.Count);
    }

    [Theory]
    [InlineData(0.0)]
    [InlineData(-1.0)]
    [InlineData(double.NaN)]
    [InlineData(double.PositiveInfinity)]
    public void Add_WeightNotPositiveFinite_Throws(double weight)
    {
        using var aggregator = new StreamingAggregator(Template());

        Assert.Throws<ArgumentOutOfRangeException>(() => aggregator.Add([F32("w", [1f, 2f], 2)], weight));
        Assert.Equal(0, aggregator.Count);
    }

    [Fact]
    public void Result_NoUpdate_ThrowsInvalidOperation()
    {
        using var aggregator = new StreamingAggregator(Template());

        var ex = Assert.Throws<InvalidOperationException>(() => aggregator.Result());

        Assert.Contains("no update was accepted", ex.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public void Add_AggregatorCreatedInsideCallersDisposeScope_StillUsableAfterScopeEnds()
    {
        StreamingAggregator aggregator;
        using (TorchSharp.torch.NewDisposeScope())
        {
            aggregator = new StreamingAggregator(Template());
            aggregator.Add([F32("w", [1f, 2f], 2)], 1);
        }

        using (aggregator)
        {
            using (TorchSharp.torch.NewDisposeScope())
            {
                aggregator.Add([F32("w", [3f, 4f], 2)], 1);
            }

            Assert.Equal([2f, 3f], Floats(aggregator.Result().Find("w")));
        }
    }

    [Fact]
    public void Result_F64AndI64Tensors_AveragedInTheirOwnDTypes()
    {
        var counter = new NamedTensor("steps", TensorDType.I64, [1], BitConverter.GetBytes(0L));
        IReadOnlyList<NamedTensor> Update(double a, long steps) =>
            [F64("d", [a, 2 * a], 2), counter with { Data = BitConverter.GetBytes(steps) }];
        using var aggregator = new StreamingAggregator(Update(0, 0));
        aggregator.Add(Update(1, 10), 1);
        aggregator.Add(Update(2, 13), 2);

        var result = aggregator.Result();

        // d = (1·1 + 2·2) / 3 = 5/3; steps = (10 + 26) / 3 = 12
        var d = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, double>(result.Find("d").Data.Span).ToArray();
        Assert.Equal(TensorDType.F64, result.Find("d").DType);
        Assert.Equal(5 / 3.0, d[0], 12);
        Assert.Equal(10 / 3.0, d[1], 12);
        Assert.Equal(TensorDType.I64, result.Find("steps").DType);
        Assert.Equal(12L, BitConverter.ToInt64(result.Find("steps").Data.Span));
    }

    // Mixed: float32 tensors over a million floats (divided in parts on several threads) and small ones, a float64 and an
    // int32 tensor; the mean taken in place is Result's, bit for bit, and a second call gives the same tensors.
    [Fact]
    public void MeanInPlace_GivesResultsBytes_InEveryDType_AndTheSameTensorsWhenCalledAgain()
    {
        using var copied = new StreamingAggregator(Mixed(0, (1 << 20) + 13));
        using var inPlace = new StreamingAggregator(Mixed(0, (1 << 20) + 13));
        foreach (var aggregator in new[] { copied, inPlace })
        {
            aggregator.Add(Mixed(1, (1 << 20) + 13), 3);
            aggregator.Add(Mixed(2, (1 << 20) + 13), 7);
            Assert.True(aggregator.TryAddAll([new(Mixed(3, (1 << 20) + 13), 5), new(Mixed(4, (1 << 20) + 13), 1)]).All(c => c.Accepted));
        }

        var expected = copied.Result();
        var mean = inPlace.MeanInPlace();

        Assert.Equal(expected.Select(t => (t.Name, t.DType, string.Join(',', t.Shape))), mean.Select(t => (t.Name, t.DType, string.Join(',', t.Shape))));
        for (var i = 0; i < expected.Count; i++)
        {
            Assert.True(expected[i].Data.Span.SequenceEqual(mean[i].Data.Span), $"tensor {expected[i].Name} differs");
        }

        // The float32 tensors are the sums' own memory, lent; the others are copies.
        Assert.All(mean, t => Assert.Equal(t.DType != TensorDType.F32, System.Runtime.InteropServices.MemoryMarshal.TryGetArray(t.Data, out _)));
        Assert.Same(mean, inPlace.MeanInPlace());
        Assert.Equal(16, inPlace.TotalWeight);
    }

    // A float32 tensor of no elements (a layer of width 0) is lent empty, beside one that has elements.
    [Fact]
    public void MeanInPlace_AnEmptyFloat32Tensor_IsLentEmpty()
    {
        using var aggregator = new StreamingAggregator([F32("empty", [], 0), F32("w", [0f, 0f], 2)]);
        aggregator.Add([F32("empty", [], 0), F32("w", [2f, 4f], 2)], 2);

        var mean = aggregator.MeanInPlace();

        Assert.Equal(0, mean.Find("empty").Data.Length);
        Assert.Equal([0L], mean.Find("empty").Shape);
        Assert.Equal([2f, 4f], Floats(mean.Find("w")));
    }

    [Fact]
    public async Task MeanInPlace_FinishesTheAggregator_AddsAndResultThrow_AndTheMeanStaysAsItWas()
    {
        using var aggregator = new StreamingAggregator(Template());
        aggregator.Add([F32("w", [1f, 2f], 2)], 1);
        aggregator.Add([F32("w", [3f, 6f], 2)], 3);

        var mean = aggregator.MeanInPlace();

        Assert.Equal([2.5f, 5f], Floats(mean.Find("w")));
        var (layout, data) = Streamable([F32("w", [1f, 2f], 2)]);
        Assert.Throws<InvalidOperationException>(() => aggregator.Add([F32("w", [1f, 2f], 2)], 1));
        Assert.Throws<InvalidOperationException>(() => aggregator.TryAddAll([new([F32("w", [1f, 2f], 2)], 1)]));
        await Assert.ThrowsAsync<InvalidOperationException>(() => aggregator.TryAddStreamedAsync(layout, [new(new MemoryStream(data), 1)], _ => ValueTask.FromResult(true), false, default));
        var ex = Assert.Throws<InvalidOperationException>(() => aggregator.Result());
        Assert.Contains("MeanInPlace", ex.Message);
        Assert.Equal(2, aggregator.Count);
        Assert.Equal([2.5f, 5f], Floats(mean.Find("w")));
    }

    [Fact]
    public void MeanInPlace_NoUpdate_ThrowsInvalidOperation_AndAfterDispose_ObjectDisposed()
    {
        var aggregator = new StreamingAggregator(Template());
        Assert.Throws<InvalidOperationException>(() => aggregator.MeanInPlace());
        // Nothing was broken by asking: the aggregator still takes updates.
        aggregator.Add([F32("w", [1f, 2f], 2)], 1);
        Assert.Equal([1f, 2f], Floats(aggregator.MeanInPlace().Find("w")));
        aggregator.Dispose();
        Assert.Throws<ObjectDisposedException>(() => aggregator.MeanInPlace());
    }

    // The lent sum goes back to the pool when the aggregator is disposed, and the next aggregator of the same size writes
    // into it: reading the old mean then throws rather than showing the new aggregation's numbers.
    [Fact]
    public unsafe void MeanInPlace_TheLentBytes_ArePinnableWhileTheAggregatorLives_AndThrowOnceItIsDisposed()
    {
        var size = (1 << 16) + 5;
        var aggregator = new StreamingAggregator([F32("w", new float[size], size)]);
        aggregator.Add([F32("w", [.. Enumerable.Repeat(4f, size)], size)], 2);
        var lent = aggregator.MeanInPlace().Find("w");

        using (var pin = lent.Data.Pin())
        {
            Assert.Equal(4f, ((float*)pin.Pointer)[size - 1]);
        }

        aggregator.Dispose();
        using var next = new StreamingAggregator([F32("w", new float[size], size)]);
        next.Add([F32("w", [.. Enumerable.Repeat(9f, size)], size)], 1);
        Assert.Equal(9f, Floats(next.MeanInPlace().Find("w"))[size - 1]);

        Assert.Throws<ObjectDisposedException>(() => lent.Data.Span.Length);
        Assert.Throws<ObjectDisposedException>(() => lent.Data.Pin());
        Assert.Throws<ObjectDisposedException>(() => lent.Data.ToArray());
    }

    [Fact]
    public void Add_AfterDispose_ThrowsObjectDisposed()
    {
        var aggregator = new StreamingAggregator(Template());
        aggregator.Dispose();

        Assert.Throws<ObjectDisposedException>(() => aggregator.Add([F32("w", [1f, 2f], 2)], 1));
    }

    [Fact]
    public void WeightedAverage_Offline_MatchesHandComputedAndRejectsBadUpdate()
    {
        var result = OfflineAggregation.WeightedAverage(
        [
            ([F32("w", [1f, 2f], 2)], 120),
            ([F32("w", [3f, 4f], 2)], 80),
        ]);

        AssertClose([1.8f, 2.8f], Floats(result.Find("w")));
        var ex = Assert.Throws<ArgumentException>(() => OfflineAggregation.WeightedAverage(
        [
            ([F32("w", [1f, 2f], 2)], 1),
            ([F64("w", [3.0, 4.0], 2)], 1),
        ]));
        Assert.Contains("Update 1", ex.Message);
        Assert.Contains("dtype-mismatch", ex.Message);
    }

    private static void AssertClose(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++)
        {
            Assert.True(Math.Abs(expected[i] - actual[i]) <= 1e-5 * Math.Max(1, Math.Abs(expected[i])), $"element {i}: expected {expected[i]}, got {actual[i]}");
        }
    }
}

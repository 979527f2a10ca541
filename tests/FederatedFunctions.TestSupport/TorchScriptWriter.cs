using System.IO.Compression;
using System.Runtime.InteropServices;
using System.Text;

namespace FederatedFunctions.TestSupport;

/// <summary>
/// Writes TorchScript files the way <c>torch.jit.save</c> does, for tests that need a module from PyTorch without PyTorch
/// here: a zip archive holding the module's TorchScript source (<c>code/__torch__.py</c>), its attributes as a protocol-2
/// pickle (<c>data.pkl</c>, tensors as persistent storages), the raw storages (<c>data/{i}</c>), <c>constants.pkl</c> and
/// <c>version</c>. The layout and opcodes are those of PyTorch's own archives (compare
/// <c>tests/fixtures/torchscript/linrelu.pt</c>, written by PyTorch); libtorch's loader is the judge.
/// </summary>
public static class TorchScriptWriter
{
    /// <summary>
    /// A multilayer perceptron <c>Net</c>: <c>forward(x) = linear(relu(… relu(linear(x, w0, b0)) …), wk, bk)</c>, with
    /// parameters <c>w{i}</c> [out, in] and <c>b{i}</c> [out] drawn uniformly in ±1/√in from <paramref name="seed"/>.
    /// </summary>
    /// <param name="widths">Inputs, hidden widths, classes.</param>
    /// <param name="seed">Seed of the weights.</param>
    public static byte[] Mlp(IReadOnlyList<int> widths, int seed)
    {
        ArgumentNullException.ThrowIfNull(widths);
        var random = new Random(seed);
        var tensors = new List<(string Name, long[] Shape, float[] Values)>();
        for (var i = 0; i + 1 < widths.Count; i++)
        {
            var bound = 1 / Math.Sqrt(widths[i]);
            float Draw() => (float)(((random.NextDouble() * 2) - 1) * bound);
            tensors.Add(($"w{i}", [widths[i + 1], widths[i]], Enumerable.Range(0, widths[i + 1] * widths[i]).Select(_ => Draw()).ToArray()));
            tensors.Add(($"b{i}", [widths[i + 1]], Enumerable.Range(0, widths[i + 1]).Select(_ => Draw()).ToArray()));
        }

        var layers = widths.Count - 1;
        var body = new StringBuilder();
        body.Append("    h0 = x\n");
        for (var i = 0; i < layers; i++)
        {
            var linear = $"torch.linear(h{i}, self.w{i}, self.b{i})";
            body.Append(i + 1 < layers ? $"    h{i + 1} = torch.relu({linear})\n" : $"    return {linear}\n");
        }

        var code = new StringBuilder();
        code.Append("class Net(Module):\n");
        code.Append("  __parameters__ = [").Append(string.Concat(tensors.Select(t => $"\"{t.Name}\", "))).Append("]\n");
        code.Append("  __buffers__ = []\n");
        foreach (var t in tensors)
        {
            code.Append($"  {t.Name} : Tensor\n");
        }

        code.Append("  training : bool\n");
        code.Append("  def forward(self: __torch__.Net,\n    x: Tensor) -> Tensor:\n");
        code.Append(body);
        return Archive("net", code.ToString(), tensors);
    }

    /// <summary>The parameters <see cref="Mlp"/> writes, by name, for checking what a loader reads.</summary>
    public static IReadOnlyDictionary<string, float[]> MlpParameters(IReadOnlyList<int> widths, int seed)
    {
        using var zip = new ZipArchive(new MemoryStream(Mlp(widths, seed)), ZipArchiveMode.Read);
        var result = new Dictionary<string, float[]>(StringComparer.Ordinal);
        var index = 0;
        for (var i = 0; i + 1 < widths.Count; i++)
        {
            foreach (var name in new[] { $"w{i}", $"b{i}" })
            {
                using var stream = zip.GetEntry($"net/data/{index++}")!.Open();
                using var copy = new MemoryStream();
                stream.CopyTo(copy);
                result[name] = MemoryMarshal.Cast<byte, float>(copy.ToArray()).ToArray();
            }
        }

        return result;
    }

    private static byte[] Archive(string root, string code, IReadOnlyList<(string Name, long[] Shape, float[] Values)> tensors)
    {
        using var buffer = new MemoryStream();
        using (var zip = new ZipArchive(buffer, ZipArchiveMode.Create, leaveOpen: true))
        {
            void Entry(string name, byte[] content)
            {
                var entry = zip.CreateEntry($"{root}/{name}", CompressionLevel.NoCompression);
                entry.LastWriteTime = new DateTimeOffset(1980, 1, 1, 0, 0, 0, TimeSpan.Zero);
                using var stream = entry.Open();
                stream.Write(content);
            }

            Entry("data.pkl", ModulePickle(tensors));
            Entry("code/__torch__.py", Encoding.UTF8.GetBytes(code));
            for (var i = 0; i < tensors.Count; i++)
            {
                Entry($"data/{i}", MemoryMarshal.AsBytes(tensors[i].Values.AsSpan()).ToArray());
            }

            Entry("constants.pkl", [0x80, 0x02, (byte)')', (byte)'.']);
            Entry("version", "3\n"u8.ToArray());
        }

        return buffer.ToArray();
    }

    // __torch__.Net() with its state {training: True, name: tensor, ...}, each tensor as
    // torch._utils._rebuild_tensor_v2(persistent ('storage', torch.FloatStorage, key, 'cpu', numel), 0, shape, stride, True, OrderedDict()).
    private static byte[] ModulePickle(IReadOnlyList<(string Name, long[] Shape, float[] Values)> tensors)
    {
        var p = new Pickle();
        p.Proto();
        p.Global("__torch__", "Net");
        p.Op(')').Op(0x81).Op('}').Op('(');
        p.Unicode("training").Op(0x88);
        for (var i = 0; i < tensors.Count; i++)
        {
            var (name, shape, values) = tensors[i];
            p.Unicode(name);
            p.Global("torch._utils", "_rebuild_tensor_v2");
            p.Op('(');
            p.Op('(').Unicode("storage").Global("torch", "FloatStorage").Unicode(i.ToString(System.Globalization.CultureInfo.InvariantCulture)).Unicode("cpu").Int(values.Length).Op('t');
            p.Op('Q');
            p.Int(0);
            p.Op('(');
            foreach (var d in shape)
            {
                p.Int(d);
            }

            p.Op('t');
            p.Op('(');
            for (var d = 0; d < shape.Length; d++)
            {
                p.Int(shape.Skip(d + 1).Aggregate(1L, (a, b) => a * b));
            }

            p.Op('t');
            p.Op(0x88);
            p.Global("collections", "OrderedDict").Op(')').Op('R');
            p.Op('t').Op('R');
        }

        p.Op('u').Op('b').Op('.');
        return p.ToArray();
    }

    private sealed class Pickle
    {
        private readonly MemoryStream bytes = new();

        public Pickle Op(int code)
        {
            bytes.WriteByte((byte)code);
            return this;
        }

        public void Proto()
        {
            Op(0x80).Op(2);
        }

        public Pickle Global(string module, string name)
        {
            Op('c');
            bytes.Write(Encoding.ASCII.GetBytes($"{module}\n{name}\n"));
            return this;
        }

        public Pickle Unicode(string text)
        {
            var utf8 = Encoding.UTF8.GetBytes(text);
            Op('X');
            bytes.Write(BitConverter.GetBytes(utf8.Length));
            bytes.Write(utf8);
            return this;
        }

        public Pickle Int(long value)
        {
            if (value is < 0 or > int.MaxValue)
            {
                throw new ArgumentOutOfRangeException(nameof(value));
            }

            Op('J');
            bytes.Write(BitConverter.GetBytes((int)value));
            return this;
        }

        public byte[] ToArray() => bytes.ToArray();
    }
}

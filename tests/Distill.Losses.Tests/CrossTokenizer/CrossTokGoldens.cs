using System.Runtime.CompilerServices;
using System.Text.Json;
using static TorchSharp.torch;

namespace Distill.Losses.Tests.CrossTokenizer;

/// <summary>
/// Reads <c>fixtures/crosstok/crosstok_goldens.json</c>, written by <c>fixtures/crosstok/make_goldens.py</c> (the official
/// DSKD / llm-recipes criterion math run under torch 1.13). Tensors are stored as <c>{"shape": [...], "data": [...]}</c>.
/// </summary>
internal static class CrossTokGoldens
{
    private static readonly Lazy<JsonElement> Root = new(Load);

    internal static string FixtureDirectory([CallerFilePath] string thisFile = "") =>
        Path.Combine(Path.GetDirectoryName(thisFile)!, "..", "fixtures", "crosstok");

    internal static double Scalar(string key) => Get(key).GetDouble();

    internal static JsonElement Get(string key) =>
        Root.Value.TryGetProperty(key, out var e) ? e : throw new KeyNotFoundException($"crosstok_goldens.json has no key '{key}'.");

    internal static Tensor Float(string key, bool requiresGrad = false)
    {
        var (shape, data) = Read(key);
        var t = tensor(data.Select(v => (float)v.GetDouble()).ToArray(), dtype: ScalarType.Float32).reshape(shape);
        return requiresGrad ? t.requires_grad_(true) : t;
    }

    internal static Tensor Long(string key)
    {
        var (shape, data) = Read(key);
        return tensor(data.Select(v => v.GetInt64()).ToArray(), dtype: ScalarType.Int64).reshape(shape);
    }

    /// <summary>Asserts <paramref name="actual"/> ≈ golden <paramref name="key"/> elementwise (|a − e| ≤ atol + rtol·|e|).</summary>
    internal static void AssertClose(string key, Tensor actual, double rtol = 1e-4, double atol = 1e-5)
    {
        using var expected = Float(key);
        Assert.Equal(expected.shape, actual.shape);
        using var a = actual.detach().to(ScalarType.Float32).cpu();
        using var diff = (a - expected).abs();
        using var bound = expected.abs() * rtol + atol;
        var worst = (diff - bound).max().item<float>();
        Assert.True(worst <= 0, $"{key}: max |diff| {diff.max().item<float>():G6} exceeds tolerance (rtol {rtol}, atol {atol}).");
    }

    internal static void AssertScalar(string key, Tensor actual, double rtol = 1e-5, double atol = 1e-5)
    {
        var e = Scalar(key);
        var a = actual.detach().to(ScalarType.Float64).cpu().item<double>();
        Assert.True(Math.Abs(a - e) <= atol + rtol * Math.Abs(e), $"{key}: expected {e:G9}, got {a:G9}.");
    }

    private static (long[] Shape, JsonElement.ArrayEnumerator Data) Read(string key)
    {
        var e = Get(key);
        var shape = e.GetProperty("shape").EnumerateArray().Select(v => v.GetInt64()).ToArray();
        return (shape, e.GetProperty("data").EnumerateArray());
    }

    private static JsonElement Load()
    {
        var path = Path.Combine(FixtureDirectory(), "crosstok_goldens.json");
        using var doc = JsonDocument.Parse(File.ReadAllText(path));
        return doc.RootElement.Clone();
    }
}

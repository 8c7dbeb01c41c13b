using System.Text.Json;

namespace Distill.Eval.Tests;

/// <summary>Reads the goldens written by fixtures/make_goldens.py (NLTK 3.8 and the reference scripts).</summary>
internal static class Fixtures
{
    public static JsonDocument Load(string name) =>
        JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", name)));
}

using System.Text.Json;

namespace Distill.Data.Tests.Bundled;

public sealed class BundledDataTests
{
    private static readonly Lazy<Dictionary<string, string>> Generated = new(BundledData.GenerateResources);

    [Fact]
    public void Resources_RegeneratedFromCode_AreUnchanged()
    {
        // Set DISTILL_REGEN_FIXTURES=1 to rewrite src/Distill.Data/Bundled/Resources from the generator.
        if (Environment.GetEnvironmentVariable("DISTILL_REGEN_FIXTURES") == "1")
        {
            var dir = Path.Combine(Tokenization.HfTokenizerTests.FindRepoTestsDir(), "..", "..", "src", "Distill.Data", "Bundled", "Resources");
            foreach (var (name, content) in Generated.Value)
            {
                File.WriteAllText(Path.Combine(dir, name), content);
            }

            return;
        }

        foreach (var (name, content) in Generated.Value)
        {
            Assert.True(content == BundledData.ReadResource(name), $"Embedded resource {name} differs from the generator's output; regenerate it.");
        }
    }

    [Fact]
    public void Load_Splits_HaveDocumentedSizesAndNoOverlap()
    {
        var train = BundledData.Load(BundledSplit.Train);
        var dev = BundledData.Load(BundledSplit.Dev);
        var test = BundledData.Load(BundledSplit.Test);
        Assert.Equal(2000, train.Count);
        Assert.Equal(200, dev.Count);
        Assert.Equal(200, test.Count);
        var keys = train.Concat(dev).Concat(test).Select(e => (e.Instruction, e.Input)).ToList();
        Assert.Equal(keys.Count, keys.Distinct().Count());
        Assert.Equal(8, train.Select(e => e.Task).Where(t => t is "add" or "subtract" or "multiply" or "reverse" or "uppercase" or "sort" or "count" or "capital").Distinct().Count());
        Assert.Contains(train, e => e.Task == "opposite");
    }

    [Fact]
    public void Load_Answers_AreCorrect()
    {
        foreach (var e in BundledData.Load(BundledSplit.Train).Concat(BundledData.Load(BundledSplit.Test)))
        {
            var expected = e.Task switch
            {
                "add" => Arith(e.Input, '+'),
                "subtract" => Arith(e.Input, '-'),
                "multiply" => Arith(e.Input, '*'),
                "reverse" => new string([.. e.Input.Reverse()]),
                "uppercase" => e.Input.ToUpperInvariant(),
                "sort" => new string([.. e.Input.Order()]),
                "count" => e.Input.Length.ToString(System.Globalization.CultureInfo.InvariantCulture),
                "capital" => BundledDataGenerator.Capitals.Single(c => c.Country == e.Input).Capital,
                "opposite" => BundledDataGenerator.Opposites.Single(o => o.Word == e.Input).Opposite,
                _ => throw new InvalidOperationException(e.Task),
            };
            Assert.Equal(expected, e.Output);
        }

        static string Arith(string input, char op)
        {
            var parts = input.Split(' ');
            Assert.Equal(op.ToString(), parts[1]);
            var (a, b) = (int.Parse(parts[0], System.Globalization.CultureInfo.InvariantCulture), int.Parse(parts[2], System.Globalization.CultureInfo.InvariantCulture));
            return (op switch { '+' => a + b, '-' => a - b, _ => a * b }).ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
    }

    [Fact]
    public void Tokenizers_HaveDocumentedSizesAndRoundTrip()
    {
        var a = BundledData.TokenizerA();
        var b = BundledData.TokenizerB();
        Assert.Equal(257, a.VocabSize);
        Assert.Equal(512, b.VocabSize);
        Assert.Equal(256, a.EosTokenId);
        Assert.Equal(511, b.EosTokenId);
        Assert.Equal(a.EosTokenId, a.PadTokenId);
        foreach (var e in BundledData.Load(BundledSplit.Test))
        {
            var text = PromptTemplates.Compact(e.Instruction, e.Input) + " " + e.Output;
            var idsA = a.Encode(text, addSpecialTokens: false).Ids;
            var idsB = b.Encode(text, addSpecialTokens: false).Ids;
            Assert.Equal(text.Length, idsA.Count); // ASCII: one byte token per character
            Assert.True(idsB.Count < idsA.Count);
            Assert.Equal(text, a.Decode(idsA, skipSpecialTokens: true));
            Assert.Equal(text, b.Decode(idsB, skipSpecialTokens: true));
        }
    }

    [Fact]
    public void Tokenizers_PromptLengths_StayShort()
    {
        // Keeps the quickstart fast: measured prompt + response lengths in tokens.
        var test = BundledData.Load(BundledSplit.Train);
        var maxA = test.Max(e => BundledData.TokenizerA().Encode(PromptTemplates.Compact(e.Instruction, e.Input) + " " + e.Output, false).Count);
        var maxB = test.Max(e => BundledData.TokenizerB().Encode(PromptTemplates.Compact(e.Instruction, e.Input) + " " + e.Output, false).Count);
        Assert.InRange(maxA, 20, 64);
        Assert.InRange(maxB, 5, 32);
    }

    [Fact]
    public void WriteTokenizer_Folder_LoadsWithFromPretrained()
    {
        using var folder = new Distill.Tests.Shared.TempFolder();
        foreach (var which in new[] { BundledTokenizer.Bytes, BundledTokenizer.Bpe })
        {
            var dir = BundledData.WriteTokenizer(which, Path.Combine(folder.Path, which.ToString()));
            var loaded = HfTokenizer.FromPretrained(dir);
            var original = BundledData.GetTokenizer(which);
            Assert.Equal(original.VocabSize, loaded.VocabSize);
            Assert.Equal(original.Encode("Add the numbers: 12 + 34\nAnswer: 46", false).Ids, loaded.Encode("Add the numbers: 12 + 34\nAnswer: 46", false).Ids);
            using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "tokenizer.json")));
            Assert.Equal("BPE", doc.RootElement.GetProperty("model").GetProperty("type").GetString());
        }
    }
}

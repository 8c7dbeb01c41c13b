using System.Runtime.InteropServices;

namespace Distill.Data.Tests.Tokenization;

/// <summary>
/// Compares <see cref="HfTokenizer"/> with the Hugging Face <c>tokenizers</c> library itself (the Rust crate, through
/// Tokenizers.DotNet's native build for linux-x64) on the same tokenizer.json files: the three built from tiktoken ranks
/// and the two bundled ones. This is the check that Python's <c>tokenizers</c> would load and encode them identically.
/// </summary>
public sealed class HfTokenizersReferenceTests
{
    public static TheoryData<string> Files => ["gpt2", "cl100k", "o200k", "bundled-bytes", "bundled-bpe"];

    [Theory]
    [MemberData(nameof(Files))]
    public void Encode_SameTokenizerJson_MatchesRustTokenizers(string name)
    {
        if (!RuntimeInformation.IsOSPlatform(OSPlatform.Linux) || RuntimeInformation.ProcessArchitecture != Architecture.X64)
        {
            // The reference's native library ships for linux-x64 only; elsewhere the tiktoken comparison still runs.
            return;
        }

        var (path, ours) = Resolve(name);
        using var rust = new Tokenizers.DotNet.Tokenizer(path);
        var texts = HfTokenizerTests.Texts.Where(t => t.Length > 0)
            .Concat(BundledData.Load(BundledSplit.Dev).Take(20).Select(e => PromptTemplates.Compact(e.Instruction, e.Input) + " " + e.Output));
        foreach (var text in texts)
        {
            var expected = rust.Encode(text).Select(id => (int)id).ToArray();
            var actual = ours.Encode(text, addSpecialTokens: true).Ids;
            Assert.True(expected.SequenceEqual(actual), $"{name}: '{text}'\nrust {string.Join(",", expected)}\nours {string.Join(",", actual)}");
        }
    }

    private static (string Path, HfTokenizer Tokenizer) Resolve(string name)
    {
        switch (name)
        {
            case "gpt2":
                return (System.IO.Path.Combine(TiktokenFolders.Gpt2, "tokenizer.json"), HfTokenizerTests.Cached.Gpt2.Value);
            case "cl100k":
                return (System.IO.Path.Combine(TiktokenFolders.Cl100k, "tokenizer.json"), HfTokenizerTests.Cached.Cl100k.Value);
            case "o200k":
                return (System.IO.Path.Combine(TiktokenFolders.O200k, "tokenizer.json"), HfTokenizerTests.Cached.O200k.Value);
            default:
                var which = name == "bundled-bytes" ? BundledTokenizer.Bytes : BundledTokenizer.Bpe;
                var dir = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "distill-tests", "bundled-" + which + "-" + Environment.ProcessId);
                BundledData.WriteTokenizer(which, dir);
                return (System.IO.Path.Combine(dir, "tokenizer.json"), BundledData.GetTokenizer(which));
        }
    }
}

public sealed class HfTokenizerConcurrencyTests
{
    [Fact]
    public void Encode_FromSeveralThreads_GivesSequentialResults()
    {
        var tokenizer = BundledData.TokenizerB();
        var texts = BundledData.Load(BundledSplit.Train).Take(400).Select(e => PromptTemplates.Compact(e.Instruction, e.Input) + " " + e.Output).ToArray();
        var expected = texts.Select(t => tokenizer.Encode(t, false).Ids.ToArray()).ToArray();
        var actual = new int[texts.Length][];
        Parallel.For(0, texts.Length, new ParallelOptions { MaxDegreeOfParallelism = 4 }, i => actual[i] = [.. tokenizer.Encode(texts[i], false).Ids]);
        for (var i = 0; i < texts.Length; i++)
        {
            Assert.Equal(expected[i], actual[i]);
        }
    }
}

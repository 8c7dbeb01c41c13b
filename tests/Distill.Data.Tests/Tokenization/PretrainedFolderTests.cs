using Distill.Models;
using Distill.Tests.Shared;
using Distill.Training;

namespace Distill.Data.Tests.Tokenization;

public sealed class PretrainedFolderTests
{
    private static Gpt2Config TinyGpt2(int vocab) => new()
    {
        ModelType = "gpt2", VocabSize = vocab, HiddenSize = 16, NumHiddenLayers = 1, NumAttentionHeads = 2, MaxPositionEmbeddings = 32,
    };

    [Fact]
    public void SavePretrained_FromFolder_WritesTheSameFilesByteForByte()
    {
        using var dir = TestRuntime.CreateTempFolder();
        var tokenizer = TiktokenFolders.LoadGpt2();
        var expected = Directory.GetFiles(TiktokenFolders.Gpt2).Select(Path.GetFileName).Where(n => tokenizer.FileNamesToSave.Contains(n)).ToList();
        Assert.Contains("tokenizer.json", expected);

        tokenizer.SavePretrained(dir.Path);

        Assert.Equal(tokenizer.FileNamesToSave, Directory.GetFiles(dir.Path).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        foreach (var name in expected)
        {
            Assert.Equal(File.ReadAllBytes(Path.Combine(TiktokenFolders.Gpt2, name!)), File.ReadAllBytes(Path.Combine(dir.Path, name!)));
        }
    }

    [Fact]
    public void SavePretrained_ModelWithBundledTokenizer_FolderReopensAsModelAndTokenizer()
    {
        using var dir = TestRuntime.CreateTempFolder();
        var tokenizer = BundledData.TokenizerB();
        using var model = AutoCausalLM.FromConfig(TinyGpt2(tokenizer.VocabSize), seed: 3);

        model.SavePretrained(dir.Path, tokenizer);

        // What transformers' AutoTokenizer + AutoModelForCausalLM read: config.json + weights, tokenizer.json + tokenizer_config.json.
        foreach (var file in new[] { "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json" })
        {
            Assert.True(File.Exists(Path.Combine(dir.Path, file)), file);
        }

        Assert.Contains("PreTrainedTokenizerFast", File.ReadAllText(Path.Combine(dir.Path, "tokenizer_config.json")), StringComparison.Ordinal);
        var reopened = HfTokenizer.FromPretrained(dir.Path); // also checks config.json's vocab_size against the tokenizer
        const string Text = "capital of France: Paris";
        Assert.Equal(tokenizer.EncodeToIds(Text, addSpecialTokens: true), reopened.EncodeToIds(Text, addSpecialTokens: true));
        Assert.Equal(tokenizer.EosTokenId, reopened.EosTokenId);
        Assert.Equal(tokenizer.PadTokenId, reopened.PadTokenId);

        // The bundled tokenizer.json also loads in the Rust tokenizers library (what AutoTokenizer's fast path uses).
        using var rust = new Tokenizers.DotNet.Tokenizer(Path.Combine(dir.Path, "tokenizer.json"));
        Assert.Equal(tokenizer.EncodeToIds(Text, addSpecialTokens: true), rust.Encode(Text).Select(id => (int)id).ToArray());

        using var loaded = AutoCausalLM.FromPretrained(dir.Path);
        Assert.Equal(tokenizer.VocabSize, loaded.Config.VocabSize);
    }

    [Fact]
    public void SavePretrained_TokenizerLargerThanModelVocabulary_ThrowsNamingBothSizes()
    {
        using var dir = TestRuntime.CreateTempFolder();
        var tokenizer = BundledData.TokenizerB();
        using var model = AutoCausalLM.FromConfig(TinyGpt2(100), seed: 3);
        var ex = Assert.Throws<ArgumentException>(() => model.SavePretrained(dir.Path, tokenizer));
        Assert.Contains("512", ex.Message, StringComparison.Ordinal);
        Assert.Contains("100", ex.Message, StringComparison.Ordinal);
        Assert.Empty(Directory.GetFiles(dir.Path));
    }

    [Fact]
    public void WithTokenizer_CheckpointWriter_AddsTokenizerFilesAndLoadsWeights()
    {
        using var dir = TestRuntime.CreateTempFolder();
        var tokenizer = BundledData.TokenizerA();
        using var model = AutoCausalLM.FromConfig(TinyGpt2(tokenizer.VocabSize), seed: 5);
        using var other = AutoCausalLM.FromConfig(TinyGpt2(tokenizer.VocabSize), seed: 6);
        var writer = new HfCheckpointWriter().WithTokenizer(tokenizer);

        writer.Save(model, dir.Path);
        writer.Load(other, dir.Path);

        Assert.True(File.Exists(Path.Combine(dir.Path, "tokenizer.json")));
        var a = model.state_dict();
        foreach (var (key, value) in other.state_dict())
        {
            Assert.True(value.eq(a[key]).all().item<bool>(), key);
        }
    }
}

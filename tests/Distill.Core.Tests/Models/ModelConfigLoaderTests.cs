using Distill.Models;
using static TorchSharp.torch;

namespace Distill.Core.Tests.Models;

public class ModelConfigLoaderTests
{
    [Fact]
    public void Parse_TransformersV5Spellings_ReadsRopeParametersAndDtype()
    {
        var c = (Qwen2Config)ModelConfigLoader.Parse("""
            {"model_type":"qwen2","vocab_size":10,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,
             "num_attention_heads":2,"num_key_value_heads":1,"dtype":"bfloat16",
             "rope_parameters":{"rope_type":"default","rope_theta":1000000.0},"eos_token_id":[7,8],"tie_word_embeddings":true}
            """);
        Assert.Equal(1e6, c.RopeTheta);
        Assert.Null(c.RopeScaling);
        Assert.Equal(new long[] { 7, 8 }, c.EosTokenIds);
        Assert.True(c.TieWordEmbeddings);
        Assert.Equal(ScalarType.BFloat16, ModelConfigLoader.StoredDType(c));
        Assert.Equal(4, c.EffectiveHeadDim);
    }

    [Fact]
    public void Parse_V4Llama3Scaling_ReadsRopeScaling()
    {
        var c = (LlamaConfig)ModelConfigLoader.Parse("""
            {"model_type":"llama","vocab_size":10,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":2,
             "torch_dtype":"float16","rope_theta":500000.0,
             "rope_scaling":{"type":"llama3","factor":8.0,"low_freq_factor":1.0,"high_freq_factor":4.0,"original_max_position_embeddings":8192}}
            """);
        Assert.Equal(5e5, c.RopeTheta);
        Assert.Equal("llama3", c.RopeScaling!.RopeType);
        Assert.Equal(8.0, c.RopeScaling.Factor);
        Assert.False(c.TieWordEmbeddings); // Llama: absent means false
        Assert.Equal(ScalarType.Float16, ModelConfigLoader.StoredDType(c));
        Assert.Equal(new long[] { 2 }, c.EosTokenIds);
    }

    [Fact]
    public void Parse_Gpt2WithoutTieKey_IsTied()
    {
        var c = (Gpt2Config)ModelConfigLoader.Parse("""{"model_type":"gpt2","n_embd":8,"n_layer":1,"n_head":2,"n_ctx":32}""");
        Assert.True(c.TieWordEmbeddings); // absent = true (PretrainedConfig default)
        Assert.Equal(32, c.MaxPositionEmbeddings);
        Assert.Equal(32, c.EffectiveInnerSize); // n_inner null = 4 * n_embd
        Assert.Equal(50257, c.VocabSize);
    }

    [Fact]
    public void Parse_MistralDefaults_SlidingWindowAndKvHeads()
    {
        var c = (LlamaConfig)ModelConfigLoader.Parse("""{"model_type":"mistral","hidden_size":64,"intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":8}""");
        Assert.Equal(4096, c.SlidingWindow);
        Assert.Equal(8, c.EffectiveNumKeyValueHeads);
        var noWindow = (LlamaConfig)ModelConfigLoader.Parse("""{"model_type":"mistral","hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":2,"num_key_value_heads":2,"sliding_window":null}""");
        Assert.Null(noWindow.SlidingWindow);
    }

    [Fact]
    public void Parse_UnknownModelType_ListsSupported()
    {
        var e = Assert.Throws<NotSupportedException>(() => ModelConfigLoader.Parse("""{"model_type":"bert"}""", "x/config.json"));
        Assert.Contains("'bert'", e.Message, StringComparison.Ordinal);
        Assert.Contains("gpt2, llama, mistral, qwen2", e.Message, StringComparison.Ordinal);
        Assert.Contains("x/config.json", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Parse_WrongKeyType_NamesKey()
    {
        var e = Assert.Throws<InvalidDataException>(() => ModelConfigLoader.Parse("""{"model_type":"llama","hidden_size":"big"}""", "m/config.json"));
        Assert.Contains("'hidden_size'", e.Message, StringComparison.Ordinal);
        Assert.Contains("m/config.json", e.Message, StringComparison.Ordinal);
        Assert.Throws<InvalidDataException>(() => ModelConfigLoader.Parse("""{"model_type":"llama","hidden_size":8,"num_attention_heads":3,"intermediate_size":4}"""));
        Assert.Throws<NotSupportedException>(() => ModelConfigLoader.Parse("""{"model_type":"llama","rope_scaling":{"type":"yarn","factor":4}}"""));
    }

    [Fact]
    public void ToJson_ThenParse_RoundTripsTypedFields()
    {
        var c = TinyModels.Mistral();
        c.RopeScaling = new RopeScaling { RopeType = "linear", Factor = 2 };
        var back = (LlamaConfig)ModelConfigLoader.Parse(ModelConfigLoader.ToJson(c, ScalarType.BFloat16));
        Assert.Equal(c.SlidingWindow, back.SlidingWindow);
        Assert.Equal(12, back.HeadDim);
        Assert.Equal(1, back.NumKeyValueHeads);
        Assert.Equal("linear", back.RopeScaling!.RopeType);
        Assert.Equal(2.0, back.RopeScaling.Factor);
        Assert.Equal(ScalarType.BFloat16, ModelConfigLoader.StoredDType(back));
    }
}

/// <summary>Every size and scalar of config.json is validated before allocation, with the file and key in the message.</summary>
public class ModelConfigValidationTests
{
    private const string Llama = """
        {"model_type":"llama","vocab_size":10,"hidden_size":8,"intermediate_size":16,"num_hidden_layers":1,"num_attention_heads":2%EXTRA%}
        """;

    private const string Gpt2 = """
        {"model_type":"gpt2","vocab_size":10,"n_embd":8,"n_layer":1,"n_head":2,"n_positions":16%EXTRA%}
        """;

    public static TheoryData<string, string, string> BadConfigs => new()
    {
        // template, extra JSON, expected key in the message
        { Gpt2, ""","n_layer":1000000""", "'n_layer'" },
        { Gpt2, ""","n_embd":1000000000""", "'n_embd'" },
        { Gpt2, ""","n_head":0""", "'n_head'" },
        { Gpt2, ""","layer_norm_epsilon":0""", "'layer_norm_epsilon'" },
        { Gpt2, ""","layer_norm_epsilon":-1e-5""", "'layer_norm_epsilon'" },
        { Gpt2, ""","n_positions":"1024" """, "'n_positions'" },
        { Gpt2, ""","resid_pdrop":1.5""", "'resid_pdrop'" },
        { Gpt2, ""","n_inner":-4""", "'n_inner'" },
        { Gpt2, ""","n_layer":1""", "'n_layer' appears twice" },
        { Gpt2, ""","vocab_size":4194305""", "'vocab_size'" },
        { Llama, ""","rms_norm_eps":0""", "'rms_norm_eps'" },
        { Llama, ""","rope_theta":0""", "'rope_theta'" },
        { Llama, ""","rope_theta":-10000""", "'rope_theta'" },
        { Llama, ""","rope_theta":1e400""", "'rope_theta'" },
        { Llama, ""","rope_scaling":{"rope_type":"linear","factor":0}""", "rope_scaling.factor" },
        { Llama, ""","rope_scaling":{"rope_type":"llama3","factor":8,"low_freq_factor":0,"high_freq_factor":4}""", "low_freq_factor" },
        { Llama, ""","rope_scaling":{"rope_type":"llama3","factor":8,"low_freq_factor":4,"high_freq_factor":4}""", "high_freq_factor" },
        { Llama, ""","num_key_value_heads":0""", "num_key_value_heads" },
        { Llama, ""","head_dim":-8""", "'head_dim'" },
        { Llama, ""","intermediate_size":"16" """, "'intermediate_size'" },
        { Llama, ""","max_position_embeddings":0""", "'max_position_embeddings'" },
        { Llama, ""","sliding_window":0""", "'sliding_window'" },
        { Llama, ""","rope_scaling":[1]""", "'rope_scaling'" },
        { Llama, ""","tie_word_embeddings":"yes" """, "'tie_word_embeddings'" },
    };

    [Theory]
    [MemberData(nameof(BadConfigs))]
    public void Load_InvalidValue_ThrowsNamingFileAndKey(string template, string extra, string fragment)
    {
        using var tmp = new Distill.Tests.Shared.TempFolder();
        var file = Path.Combine(tmp.Path, "config.json");
        File.WriteAllText(file, template.Replace("%EXTRA%", extra, StringComparison.Ordinal));
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var e = Assert.Throws<InvalidDataException>(() => AutoCausalLM.FromPretrained(tmp.Path));
        Assert.Contains(file, e.Message, StringComparison.Ordinal);
        Assert.Contains(fragment, e.Message, StringComparison.Ordinal);
        Assert.True(e.Message.Length < 1000);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(5), "validation happens before allocation");
    }

    [Fact]
    public void Load_SizesTooLargeTogether_ThrowsBeforeAllocating()
    {
        var e = Assert.Throws<InvalidDataException>(() => ModelConfigLoader.Parse("""
            {"model_type":"llama","vocab_size":4000000,"hidden_size":131072,"intermediate_size":1000000,"num_hidden_layers":1000,"num_attention_heads":1024}
            """, "big/config.json"));
        Assert.Contains("big/config.json", e.Message, StringComparison.Ordinal);
        Assert.Contains("MaxParameters", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_EmptyAndNonUtf8_ThrowNamingFile()
    {
        using var tmp = new Distill.Tests.Shared.TempFolder();
        var file = Path.Combine(tmp.Path, "config.json");
        File.WriteAllBytes(file, []);
        Assert.Contains(file, Assert.Throws<InvalidDataException>(() => ModelConfigLoader.Load(tmp.Path)).Message, StringComparison.Ordinal);
        File.WriteAllBytes(file, [(byte)'{', (byte)'"', 0xC3, 0x28, (byte)'"', (byte)':', (byte)'1', (byte)'}']);
        var e = Assert.Throws<InvalidDataException>(() => ModelConfigLoader.Load(tmp.Path));
        Assert.Contains("UTF-8", e.Message, StringComparison.Ordinal);
        Assert.Contains(file, e.Message, StringComparison.Ordinal);
    }
}

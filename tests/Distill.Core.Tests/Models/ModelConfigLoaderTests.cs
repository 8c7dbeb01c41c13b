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

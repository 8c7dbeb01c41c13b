namespace Distill.Lora.Tests;

public sealed class TargetModuleMatcherTests
{
    [Theory]
    [InlineData("model.layers.0.self_attn.q_proj", true)]
    [InlineData("model.layers.11.self_attn.v_proj", true)]
    [InlineData("model.layers.0.self_attn.k_proj", false)]
    [InlineData("model.layers.0.self_attn", false)]
    [InlineData("model.layers.0.self_attn.xq_proj", false)] // suffix match is per name component, not per character
    [InlineData("q_proj", true)] // a name equal to an entry matches
    public void IsTarget_List_MatchesNameComponentSuffix(string key, bool expected)
    {
        var c = new LoraConfig { TargetModules = ["q_proj", "v_proj"] };

        Assert.Equal(expected, TargetModuleMatcher.IsTarget(c, key));
    }

    [Theory]
    [InlineData("model.layers.0.self_attn.q_proj", true)]
    [InlineData("model.layers.1.self_attn.q_proj", false)]
    [InlineData("xmodel.layers.0.self_attn.q_proj", false)] // re.fullmatch: anchored at both ends
    public void IsTarget_Pattern_FullMatch(string key, bool expected)
    {
        var c = new LoraConfig { TargetModulesPattern = @"model\.layers\.0\..*q_proj" };

        Assert.Equal(expected, TargetModuleMatcher.IsTarget(c, key));
    }

    [Theory]
    [InlineData("model.layers.0.self_attn.q_proj", false)]
    [InlineData("model.layers.1.self_attn.q_proj", true)]
    [InlineData("transformer.h.1.attn.q_proj", true)] // no layers_pattern: the first numbered component
    [InlineData("model.layers.2.self_attn.q_proj", false)]
    public void IsTarget_LayersToTransform_SelectsLayerIndex(string key, bool expected)
    {
        var c = new LoraConfig { TargetModules = ["q_proj"], LayersToTransform = [1] };

        Assert.Equal(expected, TargetModuleMatcher.IsTarget(c, key));
    }

    [Fact]
    public void IsTarget_LayersPattern_UsesNamedList()
    {
        var c = new LoraConfig { TargetModules = ["q_proj"], LayersToTransform = [1], LayersPattern = ["blocks"] };

        Assert.True(TargetModuleMatcher.IsTarget(c, "model.blocks.1.attn.q_proj"));
        Assert.False(TargetModuleMatcher.IsTarget(c, "model.layers.1.attn.q_proj"));
    }

    [Fact]
    public void IsTarget_InvalidPattern_NamesFieldAndPattern()
    {
        var c = new LoraConfig { TargetModulesPattern = @"model\.(layers" };

        var e = Assert.Throws<ArgumentException>(() => TargetModuleMatcher.IsTarget(c, "model.layers.0.q_proj"));

        Assert.Contains("target_modules", e.Message, StringComparison.Ordinal);
        Assert.Contains(@"model\.(layers", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void RankAndAlpha_CatastrophicPattern_TimesOutWithClearError()
    {
        // (a+)+x against 40 a's and no x backtracks 2^40 ways: the 1 s match timeout fires, and the error names the field,
        // the pattern and the module instead of a bare RegexMatchTimeoutException.
        var c = new LoraConfig { TargetModules = ["q_proj"], RankPattern = { ["(a+)+x"] = 4 } };
        var key = new string('a', 40);

        var e = Assert.Throws<ArgumentException>(() => TargetModuleMatcher.RankAndAlpha(c, key));

        Assert.Contains("rank_pattern", e.Message, StringComparison.Ordinal);
        Assert.Contains("(a+)+x", e.Message, StringComparison.Ordinal);
        Assert.Contains(key, e.Message, StringComparison.Ordinal);
        Assert.IsType<System.Text.RegularExpressions.RegexMatchTimeoutException>(e.InnerException);
    }

    [Fact]
    public void IsTarget_ExcludedOrModuleToSave_IsFalse()
    {
        var c = new LoraConfig { TargetModulesPattern = ".*proj|lm_head|score.*", ExcludeModules = ["o_proj"], ModulesToSave = ["lm_head", "score"] };

        Assert.True(TargetModuleMatcher.IsTarget(c, "model.layers.0.self_attn.q_proj"));
        Assert.False(TargetModuleMatcher.IsTarget(c, "model.layers.0.self_attn.o_proj"));
        Assert.False(TargetModuleMatcher.IsTarget(c, "lm_head"));
        Assert.False(TargetModuleMatcher.IsTarget(c, "score.dense")); // inside a modules_to_save module
    }

    [Fact]
    public void RankAndAlpha_Patterns_FirstMatchingKeyWins()
    {
        var c = new LoraConfig { R = 8, LoraAlpha = 16 };
        c.RankPattern[@"layers\.0\.self_attn\.q_proj"] = 2;
        c.RankPattern["q_proj"] = 4;
        c.AlphaPattern["v_proj"] = 3;

        Assert.Equal((2, 16.0), TargetModuleMatcher.RankAndAlpha(c, "model.layers.0.self_attn.q_proj"));
        Assert.Equal((4, 16.0), TargetModuleMatcher.RankAndAlpha(c, "model.layers.1.self_attn.q_proj"));
        Assert.Equal((8, 3.0), TargetModuleMatcher.RankAndAlpha(c, "model.layers.1.self_attn.v_proj"));
        Assert.Equal((8, 16.0), TargetModuleMatcher.RankAndAlpha(c, "model.layers.1.self_attn.xv_proj2"));
    }

    [Fact]
    public void MinimalTargetModules_PeftDocstringExample_ReturnsLeafNames()
    {
        // The example of PEFT's _find_minimal_target_modules docstring.
        var targets = Enumerable.Range(0, 100).Select(i => $"model.decoder.layers.{i}.self_attn.q_proj")
            .Concat(Enumerable.Range(0, 100).Select(i => $"model.decoder.layers.{i}.self_attn.v_proj")).ToList();
        var others = Enumerable.Range(0, 100).Select(i => $"model.encoder.layers.{i}.self_attn.k_proj");

        Assert.Equal(["q_proj", "v_proj"], TargetModuleMatcher.MinimalTargetModules(targets, others));
    }

    [Fact]
    public void MinimalTargetModules_SharedLeafName_KeepsLongerSuffix()
    {
        // decoder q_proj targeted, encoder q_proj not: "q_proj" alone would over-match.
        var targets = new[] { "model.decoder.layers.0.q_proj", "model.decoder.layers.1.q_proj" };
        var others = new[] { "model.encoder.layers.0.q_proj" };

        var minimal = TargetModuleMatcher.MinimalTargetModules(targets, others);

        var c = new LoraConfig { TargetModules = [.. minimal] };
        Assert.All(targets, t => Assert.True(TargetModuleMatcher.IsTarget(c, t)));
        Assert.All(others, o => Assert.False(TargetModuleMatcher.IsTarget(c, o)));
    }
}

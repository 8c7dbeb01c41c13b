using System.Text.Json;
using Distill.Data.Synthesis;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace Distill.Data.Tests.Synthesis;

public class SdftTemplateTests
{
    public static TheoryData<string, string, string, string, string> Golden()
    {
        // fixtures/sdft_templates_golden.json comes from fixtures/sdft_templates_reference.py, which reads the template
        // definitions from the official sources (reproduce: src/llmtuner/data/template.py; main: main.py) and renders turn 0
        // with each branch's LLaMA-Factory encoding rules.
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(AppContext.BaseDirectory, "fixtures", "sdft_templates_golden.json")));
        var data = new TheoryData<string, string, string, string, string>();
        foreach (var row in doc.RootElement.EnumerateArray())
        {
            data.Add(row.GetProperty("template").GetString()!, row.GetProperty("branch").GetString()!, row.GetProperty("query").GetString()!, row.GetProperty("resp").GetString()!, row.GetProperty("expected").GetString()!);
        }

        return data;
    }

    [Theory]
    [MemberData(nameof(Golden))]
    public void Render_MatchesTheOfficialTemplates(string template, string branch, string query, string resp, string expected)
    {
        var b = branch == "main" ? SdftBranch.Main : SdftBranch.Reproduce;
        Assert.Equal(expected, SdftTemplate.FromName(template).Render(query, resp, b, "<s>"));
    }

    [Fact]
    public void Golden_CoversEveryOfficialTemplateOnBothBranches()
    {
        var covered = Golden().Select(r => ((string)r[0], (string)r[1])).ToHashSet();
        foreach (var t in SdftTemplate.All.Where(t => t.IsOfficial))
        {
            Assert.Contains((t.Name, "reproduce"), covered);
            Assert.Contains((t.Name, "main"), covered);
        }
    }

    [Fact]
    public void Render_ReproduceDistillUsing_ExactText()
    {
        // Written out by hand from reproduce template.py L285-300 and _encode L94-121: <s> + system + "\n\n" + prompt.
        var text = SdftTemplate.AlpacaDistillUsing.Render(SdftTemplate.Query("Name a colour", "sky"), " Blue. ", SdftBranch.Reproduce, "<s>");
        Assert.Equal(
            "<s>Below are an instruction that describes a task along with a reference answer. Using the reference answer as a guide, write your own response.\n\n"
            + "### Instruction:\nName a colour\nsky\n\n### Reference Answer:\nBlue.\n\n### Response:\n",
            text);
    }

    [Fact]
    public void Render_MainGsm8kDistill_PutsBosAfterTheSystemBlock()
    {
        var text = SdftTemplate.Gsm8kDistill.Render("Q", "A", SdftBranch.Main, "<s>");
        Assert.StartsWith("<<SYS>>\nYou are an expert in math.", text, StringComparison.Ordinal);
        Assert.EndsWith("<</SYS>>\n\n<s>[INST] Q\n\nA [/INST] Great! Let's think step by step. ", text, StringComparison.Ordinal);
    }

    [Fact]
    public void Render_NoBosToken_OmitsIt()
    {
        Assert.StartsWith("Below is", SdftTemplate.Alpaca.Render("q", "r", SdftBranch.Reproduce, null), StringComparison.Ordinal);
    }

    [Fact]
    public void Compact_Pair_RendersShortPrompts()
    {
        Assert.Equal("<s>Add: 1 + 2\nAnswer:", SdftTemplate.Compact.Render("Add: 1 + 2", "3", SdftBranch.Reproduce, "<s>"));
        Assert.Equal("<s>Add: 1 + 2\nReference: 3\nAnswer:", SdftTemplate.CompactDistill.Render("Add: 1 + 2", "3", SdftBranch.Main, "<s>"));
        Assert.Equal(" ", SdftTemplate.Compact.ResponsePrefix);
        Assert.Equal(string.Empty, SdftTemplate.Alpaca.ResponsePrefix);
    }

    [Fact]
    public void FromName_Unknown_ListsKnownTemplates()
    {
        var ex = Assert.Throws<ArgumentException>(() => SdftTemplate.FromName("vicuna"));
        Assert.Contains("alpaca_distill_using", ex.Message, StringComparison.Ordinal);
        Assert.Contains("gsm8k_distill", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Task_Unknown_ListsKnownTypes()
    {
        var ex = Assert.Throws<ArgumentException>(() => SdftTask.FromName("poetry"));
        foreach (var known in new[] { "general", "math", "code", "openfunction" })
        {
            Assert.Contains(known, ex.Message, StringComparison.Ordinal);
        }
    }

    [Theory]
    [InlineData("alpaca", SdftTaskKind.General, "alpaca_distill_using", "alpaca", 2)]
    [InlineData("dolly", SdftTaskKind.General, "alpaca_distill_using", "alpaca", 2)]
    [InlineData("magicoder", SdftTaskKind.Code, "alpaca_distill_refer", "alpaca", 2)]
    [InlineData("openfunction", SdftTaskKind.OpenFunction, "alpaca_distill_refer", "alpaca", 5)]
    [InlineData("GSM8K", SdftTaskKind.Math, "gsm8k_distill", "gsm8k", 5)]
    public void Task_OfficialTable(string name, SdftTaskKind kind, string distill, string train, int epochs)
    {
        var task = SdftTask.FromName(name);
        Assert.Equal((kind, distill, train, epochs), (task.Kind, task.DistillTemplate.Name, task.TrainTemplate.Name, task.Epochs));
    }

    [Fact]
    public void Options_Invalid_AreAllReported()
    {
        var options = new SdftOptions { Task = "nope", BatchSize = 0, TopP = 1.5 };
        var ex = Assert.Throws<ArgumentException>(options.ThrowIfInvalid);
        Assert.Contains("BatchSize", ex.Message, StringComparison.Ordinal);
        Assert.Contains("TopP", ex.Message, StringComparison.Ordinal);
        Assert.Contains("Unknown SDFT task type 'nope'", ex.Message, StringComparison.Ordinal);
        var noSlot = new SdftOptions { DistillTemplate = "alpaca" };
        Assert.Contains("no {{resp}} slot", Assert.Throws<ArgumentException>(noSlot.ThrowIfInvalid).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_RangeRules_NameTheOption()
    {
        var options = new SdftOptions { MaxNewTokens = 0, Temperature = 0, TopP = 0, TopK = -1, CutoffLength = 1, Branch = (SdftBranch)9 };
        var message = Assert.Throws<ArgumentException>(options.ThrowIfInvalid).Message;
        foreach (var option in new[] { "MaxNewTokens", "Temperature", "TopP", "TopK", "CutoffLength", "Branch" })
        {
            Assert.Contains($"SdftOptions.{option}", message, StringComparison.Ordinal);
        }

        new SdftOptions { Temperature = 1e-3, TopP = 1, TopK = 0 }.ThrowIfInvalid();
    }

    [Fact]
    public void Preset_HasTheOfficialHyperParameters()
    {
        var o = new Distill.Training.TrainingOptions();
        SdftPreset.Apply(o, SdftTask.FromName("gsm8k"));
        Assert.Equal((5, 1e-4, 4, 0.0, 0.0), (o.Epochs, o.LearningRate, o.GradientAccumulationSteps, o.WarmupRatio, o.WeightDecay));
        Assert.Equal(Distill.Training.LearningRateScheduleKind.Cosine, o.Schedule);
        Assert.Equal((8, 16.0, 2), (SdftPreset.LoraRank, SdftPreset.LoraAlpha, SdftPreset.BatchSize));
        Assert.Equal(["q_proj", "v_proj"], SdftPreset.LoraTargetModules);
        Assert.Equal(0.1, SdftPreset.LoraDropout(SdftBranch.Reproduce));
        Assert.Equal(0.0, SdftPreset.LoraDropout(SdftBranch.Main));
    }
}

public class SdftBuilderExtensionsTests
{
    [Fact]
    public void AddDistillSdft_BindsAndValidates()
    {
        var services = new ServiceCollection();
        services.AddDistill().AddDistillSdft(o => o.Task = "gsm8k").AddDistillSdft(o => o.Branch = SdftBranch.Main);
        using (var provider = services.BuildServiceProvider())
        {
            var options = provider.GetRequiredService<IOptions<SdftOptions>>().Value;
            Assert.Equal(("gsm8k", SdftBranch.Main, 512, 0.95, 0.7, 50), (options.Task, options.Branch, options.MaxNewTokens, options.Temperature, options.TopP, options.TopK));
        }

        var bad = new ServiceCollection();
        bad.AddDistill().AddDistillSdft(o => o.Task = "poetry");
        using var badProvider = bad.BuildServiceProvider();
        var ex = Assert.Throws<OptionsValidationException>(() =>
            badProvider.GetRequiredService<IOptions<SdftOptions>>().Value);
        Assert.Contains(ex.Failures, f => f.Contains("Unknown SDFT task type 'poetry'", StringComparison.Ordinal));
    }
}

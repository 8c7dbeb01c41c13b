using Distill.Core.Tests.Models;
using Distill.Generation;
using Distill.Training;
using Distill.Training.Sources;
using static Distill.Core.Tests.Training.Sources.SourceBatches;
using static TorchSharp.torch;

namespace Distill.Core.Tests.Training.Sources;

/// <summary>Each sample source produces what it promises, on tiny GPT-2 models with fixed seeds.</summary>
[Collection("Sequential")]
public class SampleSourceTests
{
    private const long Eos = 60; // TinyModels.Gpt2's eos_token_id

    private static readonly (long[] Prompt, long[] Response)[] Rows =
    [
        ([5, 6, 7], [8, 9]),
        ([10, 11, 12, 13, 14], [1]),
        ([20], [21, 22, 23]),
    ];

    private static long[] Greedy(ICausalLM model, long[] prompt, int maxNew, long eos = Eos)
    {
        using var result = TextGenerator.Generate(model, tensor(prompt, [1, prompt.Length]), new GenerationOptions { MaxNewTokens = maxNew, EosTokenIds = [eos] });
        return [.. result.GeneratedIds[0].data<long>().ToArray().Take((int)result.Lengths[0])];
    }

    private sealed class CapturingLogger : Microsoft.Extensions.Logging.ILogger
    {
        public List<(int Id, string Message)> Events { get; } = [];

        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(Microsoft.Extensions.Logging.LogLevel logLevel) => true;

        public void Log<TState>(Microsoft.Extensions.Logging.LogLevel logLevel, Microsoft.Extensions.Logging.EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
            Events.Add((eventId.Id, formatter(state, exception)));
    }

    [Fact]
    public void Student_RowsEqualTextGeneratorOutputForTheirPrompts_InTrainingModeToo()
    {
        using var scope = NewDisposeScope();
        var student = TinyModels.Create("gpt2", seed: 7); // dropout 0.1: generation must switch it off
        student.train();
        var source = SampleSources.Create(AtkdSampleSource.Student, student, options: new SampleSourceOptions { MaxNewTokens = 6 });

        var output = source.Transform(Make(Rows, Eos), Context());

        Assert.True(student.training); // restored
        Assert.True(source.ReadsStudent);
        Assert.Equal("student", source.Name);
        long tokens = 0;
        for (var b = 0; b < Rows.Length; b++)
        {
            var generated = Greedy(student, Rows[b].Prompt, 6);
            tokens += generated.Length;
            Assert.Equal([.. Rows[b].Prompt, .. generated], RealTokens(output, b));
            Assert.Equal(generated, ScoredLabels(output, b)); // the response, EOS included, and nothing of the prompt
        }

        Assert.Equal([100L, 101, 102], output.ExampleIds);
        var stats = source.Statistics;
        Assert.Equal((1, 1, 3, tokens), (stats.Batches, stats.GeneratedBatches, stats.GeneratedRows, stats.GeneratedTokens));
        Assert.Equal(tokens / 3.0, stats.MeanGeneratedLength, 12);
    }

    [Fact]
    public void Statistics_AreLoggedEveryNGeneratedBatches()
    {
        using var scope = NewDisposeScope();
        var logger = new CapturingLogger();
        var student = TinyModels.Create("gpt2", seed: 7);
        var source = SampleSources.Create(AtkdSampleSource.Student, student, options: new SampleSourceOptions { MaxNewTokens = 3, LogEveryBatches = 2 }, logger: logger);
        for (var i = 0; i < 5; i++)
        {
            source.Transform(Make(Rows, Eos), Context(index: i));
        }

        Assert.Single(logger.Events, e => e.Id == 1302);
        var progress = logger.Events.Where(e => e.Id == 1301).Select(e => e.Message).ToList();
        Assert.Equal(2, progress.Count);
        Assert.StartsWith("Sample source student: 4 micro-batches, 4 generated (12 rows", progress[1]);
        Assert.Equal(15, source.Statistics.GeneratedRows);
    }

    [Fact]
    public void Student_LeftOrRightPaddedInput_GivesTheSameRightPaddedBatch_AndEachRowsLossEqualsTheRowAlone()
    {
        using var scope = NewDisposeScope();
        var student = TinyModels.Create("gpt2", seed: 7);
        var options = new SampleSourceOptions { MaxNewTokens = 5 };
        var right = SampleSources.Create(AtkdSampleSource.Student, student, options: options).Transform(Make(Rows, Eos), Context());
        var left = SampleSources.Create(AtkdSampleSource.Student, student, options: options).Transform(Make(Rows, Eos, left: true), Context());
        AssertSameBatch(right, left);

        student.eval();
        using var noGrad = no_grad();
        var logits = student.Forward(new CausalLMInput { InputIds = right.InputIds, AttentionMask = right.AttentionMask, PositionIds = right.PositionIds }).Logits!;
        for (var b = 0; b < Rows.Length; b++)
        {
            var batched = nn.functional.cross_entropy(logits[b], right.Labels[b], ignore_index: DistillationBatch.IgnoreIndex, reduction: nn.Reduction.Sum).item<float>();
            var tokens = RealTokens(right, b);
            var n = tokens.Length;
            var alone = student.Forward(new CausalLMInput { InputIds = tensor(tokens, [1, n]) }).Logits![0];
            var labels = right.Labels[b].narrow(0, 0, n); // right padding: the row's labels are its first n columns
            var single = nn.functional.cross_entropy(alone, labels, ignore_index: DistillationBatch.IgnoreIndex, reduction: nn.Reduction.Sum).item<float>();
            Assert.Equal(single, batched, 4);
        }
    }

    [Fact]
    public void MixRequest_Ratio0IsTheDatasetBatch_Ratio1IsTheStudentSource_BitForBit()
    {
        using var scope = NewDisposeScope();
        var student = TinyModels.Create("gpt2", seed: 7);
        var batch = Make(Rows, Eos);
        foreach (var kind in new[] { AtkdSampleSource.MixRequestGt, AtkdSampleSource.MixRequestTeacher })
        {
            var never = SampleSources.Create(kind, student, options: new SampleSourceOptions { StudentRequestRatio = 0, MaxNewTokens = 6 });
            for (var i = 0; i < 5; i++)
            {
                Assert.Same(batch, never.Transform(batch, Context(index: i)));
            }

            Assert.False(never.ReadsStudent); // nothing to wait for: prefetch stays on
            Assert.Equal((5L, 0L), (never.Statistics.Batches, never.Statistics.GeneratedBatches));

            var always = SampleSources.Create(kind, student, options: new SampleSourceOptions { StudentRequestRatio = 1, MaxNewTokens = 6 });
            var pure = SampleSources.Create(AtkdSampleSource.Student, student, options: new SampleSourceOptions { MaxNewTokens = 6 });
            for (var i = 0; i < 3; i++)
            {
                AssertSameBatch(pure.Transform(batch, Context(index: i)), always.Transform(batch, Context(index: i)));
            }
        }
    }

    [Fact]
    public void MixRequest_HalfRatio_CoinDependsOnlyOnSeedEpochIndex()
    {
        using var scope = NewDisposeScope();
        var student = TinyModels.Create("gpt2", seed: 7);
        var batch = Make(Rows, Eos);
        var source = SampleSources.Create(AtkdSampleSource.MixRequestGt, student, options: new SampleSourceOptions { MaxNewTokens = 2 });
        var first = Enumerable.Range(0, 16).Select(i => !ReferenceEquals(batch, source.Transform(batch, Context(index: i)))).ToArray();
        var again = Enumerable.Range(0, 16).Reverse().Select(i => !ReferenceEquals(batch, source.Transform(batch, Context(index: i)))).Reverse().ToArray();
        Assert.Equal(first, again);
        Assert.Contains(true, first);
        Assert.Contains(false, first);
        Assert.Equal(first.Count(g => g) * 2, source.Statistics.GeneratedBatches);
    }

    [Fact]
    public void TeacherOnTheFly_ThenStudent_ReadsThePromptsBackFromTheTeachersBatch()
    {
        using var scope = NewDisposeScope();
        var student = TinyModels.Create("gpt2", seed: 7);
        var teacherModel = TinyModels.Create("gpt2", seed: 9);
        var teacherAnswers = new OnPolicySource(teacherModel, new SampleSourceOptions { StudentRequestRatio = 1, DoSample = true, MaxNewTokens = 5 }, name: "teacher");
        var onPolicy = SampleSources.Create(AtkdSampleSource.Student, student, new LocalModelTeacher(teacherModel), new SampleSourceOptions { MaxNewTokens = 5 });
        var batch = Make(Rows, Eos);

        var fromTeacher = teacherAnswers.Transform(batch, Context());
        for (var b = 0; b < Rows.Length; b++)
        {
            Assert.Equal(Rows[b].Prompt, RealTokens(fromTeacher, b).Take(Rows[b].Prompt.Length));
        }

        AssertSameBatch(onPolicy.Transform(batch, Context()), onPolicy.Transform(fromTeacher, Context()));
    }

    [Fact]
    public void MixToken_Ratio1IsStudentGreedy_Ratio0IsTeacherGreedy()
    {
        using var scope = NewDisposeScope();
        var student = TinyModels.Create("gpt2", seed: 7);
        var teacherModel = TinyModels.Create("gpt2", seed: 9);
        var teacher = new LocalModelTeacher(teacherModel);
        var batch = Make(Rows, Eos);
        student.train();

        var studentOnly = SampleSources.Create(AtkdSampleSource.MixToken, student, teacher, new SampleSourceOptions { StudentTokenRatio = 1, MaxNewTokens = 7 });
        var teacherOnly = SampleSources.Create(AtkdSampleSource.MixToken, student, teacher, new SampleSourceOptions { StudentTokenRatio = 0, MaxNewTokens = 7 });
        var s = studentOnly.Transform(batch, Context());
        var t = teacherOnly.Transform(batch, Context());

        Assert.Equal("mix_token", studentOnly.Name);
        Assert.True(student.training); // both models' modes are restored
        Assert.False(teacherModel.training);
        for (var b = 0; b < Rows.Length; b++)
        {
            Assert.Equal([.. Rows[b].Prompt, .. Greedy(student, Rows[b].Prompt, 7)], RealTokens(s, b));
            Assert.Equal([.. Rows[b].Prompt, .. Greedy(teacherModel, Rows[b].Prompt, 7)], RealTokens(t, b));
        }

        // Bit for bit against the batched student source as well (same prompts, same cache path).
        AssertSameBatch(SampleSources.Create(AtkdSampleSource.Student, student, options: new SampleSourceOptions { MaxNewTokens = 7 }).Transform(batch, Context()), s);
    }

    [Fact]
    public void MixToken_HalfRatio_EachTokenIsTheArgmaxOfTheModelItsCoinChose()
    {
        using var scope = NewDisposeScope();
        var student = TinyModels.Create("gpt2", seed: 7);
        var teacherModel = TinyModels.Create("gpt2", seed: 9);
        const int maxNew = 10;
        var source = SampleSources.Create(AtkdSampleSource.MixToken, student, new LocalModelTeacher(teacherModel), new SampleSourceOptions { MaxNewTokens = maxNew });
        var context = Context(index: 3);

        var output = source.Transform(Make(Rows, Eos), context);

        // Replay: the coins of the batch (stream 2), then a full recompute (no cache) of the chosen model per position.
        var random = context.CreateRandom(2);
        var chooser = Enumerable.Range(0, maxNew).Select(_ => random.NextDouble() < 0.5).ToArray();
        Assert.Contains(true, chooser);
        Assert.Contains(false, chooser);
        student.eval();
        using var noGrad = no_grad();
        for (var b = 0; b < Rows.Length; b++)
        {
            var tokens = RealTokens(output, b);
            var p = Rows[b].Prompt.Length;
            Assert.Equal(Rows[b].Prompt, tokens.Take(p));
            for (var i = 0; i < tokens.Length - p; i++)
            {
                var model = chooser[i] ? (ICausalLM)student : teacherModel;
                var logits = model.Forward(new CausalLMInput { InputIds = tensor(tokens.Take(p + i).ToArray(), [1, p + i]) }).Logits!;
                Assert.Equal(logits[0, -1].argmax().item<long>(), tokens[p + i]);
            }
        }
    }
}

using System.Diagnostics;
using System.Text.Json.Nodes;
using Distill.Training;
using Distill.Training.Sources;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Benchmarks;

/// <summary>
/// Time split of one on-policy (GKD, λ = 1) distillation step with GPT-2-shaped models: the student (<c>--layers</c> / 2
/// layers) generates <c>--new</c> tokens for <c>--batch</c> prompts of <c>--prompt</c> random ids through
/// <see cref="OnPolicySource"/> (one batched, KV-cached <c>TextGenerator</c> call, sampling at τ = 1); the frozen teacher
/// (<c>--layers</c> layers) scores the new batch (<see cref="LocalModelTeacher"/>); the student runs forward, forward KL over
/// the response tokens, backward and AdamW. Each part is timed on its own (median of <c>--repeats</c> steps after
/// <c>--warmup</c>), and the step total is their sum.
/// </summary>
/// <remarks><c>--quick</c> shrinks everything (4-layer teacher, 2-layer student, batch 2, prompt 16, 16 new tokens, 1 warm-up, 2 repeats).</remarks>
internal static class OnPolicyBenchmark
{
    internal static ModelBenchOptions Quick(ModelBenchOptions o) => o with { Layers = 4, Batch = 2, Prompt = 16, NewTokens = 16, Warmup = 1, Repeats = 2 };

    internal static JsonObject Run(ModelBenchOptions o, JsonObject summary)
    {
        using var student = ForwardBenchmarkHarness.Gpt2Small(Math.Max(1, o.Layers / 2), o.Seed + 1);
        using var teacherModel = ForwardBenchmarkHarness.Gpt2Small(o.Layers, o.Seed + 2);
        var teacher = new LocalModelTeacher(teacherModel);
        student.train();
        using var g = new Generator((ulong)o.Seed);
        using var prompts = torch.randint(0, 50257, [o.Batch, o.Prompt], generator: g, dtype: ScalarType.Int64);
        using var mask = torch.ones_like(prompts);
        using var ignored = torch.full_like(prompts, DistillationBatch.IgnoreIndex); // prompt-only rows: the whole row is the prompt
        var batch = new DistillationBatch { InputIds = prompts, AttentionMask = mask, Labels = ignored };
        var source = SampleSources.OnPolicy(student, new SampleSourceOptions { StudentRequestRatio = 1, DoSample = true, Temperature = 1, MaxNewTokens = o.NewTokens, EosTokenIds = [50256], LogEveryBatches = 0 });
        using var optimizer = torch.optim.AdamW(student.parameters(), lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01);
        var requirements = new ObjectiveRequirements();
        var parts = new Dictionary<string, List<double>> { ["generation"] = [], ["teacher_forward"] = [], ["student_fwd_bwd_step"] = [] };
        var generatedTokens = 0L;
        var index = 0;

        void Step(bool record)
        {
            using var scope = torch.NewDisposeScope();
            var clock = Stopwatch.StartNew();
            var prepared = source.Transform(batch, new BatchTransformContext((int)o.Seed, 0, index++, CPU, CancellationToken.None));
            _ = prepared.InputIds.sum().item<long>(); // synchronise (a no-op on CPU)
            var generation = clock.Elapsed.TotalSeconds;

            clock.Restart();
            Tensor teacherLogits;
            using (torch.no_grad())
            {
                teacherLogits = teacher.Infer(prepared, requirements).Logits!;
            }

            _ = teacherLogits.sum().item<float>();
            var teacherTime = clock.Elapsed.TotalSeconds;

            clock.Restart();
            optimizer.zero_grad();
            var logits = student.Forward(new CausalLMInput { InputIds = prepared.InputIds, AttentionMask = prepared.AttentionMask, PositionIds = prepared.PositionIds }).Logits!;
            var valid = prepared.Labels.ne(DistillationBatch.IgnoreIndex).reshape(-1);
            // KL(p_teacher || q_student) per token: kl_div(input = student log-probs, target = teacher log-probs).
            var kl = nn.functional.kl_div(logits.reshape(-1, 50257).log_softmax(-1), teacherLogits.reshape(-1, 50257).log_softmax(-1), reduction: nn.Reduction.None, log_target: true).sum(-1);
            var loss = kl.masked_fill(valid.logical_not(), 0).sum() / valid.sum().clamp_min(1);
            loss.backward();
            optimizer.step();
            _ = loss.item<float>();
            var studentTime = clock.Elapsed.TotalSeconds;
            if (record)
            {
                parts["generation"].Add(generation);
                parts["teacher_forward"].Add(teacherTime);
                parts["student_fwd_bwd_step"].Add(studentTime);
                generatedTokens = prepared.Labels.ne(DistillationBatch.IgnoreIndex).sum().item<long>();
            }
        }

        var key = $"onpolicy/gpt2_T{o.Layers}_S{Math.Max(1, o.Layers / 2)}_b{o.Batch}_p{o.Prompt}_n{o.NewTokens}";
        Console.Error.WriteLine($"[bench] {key}");
        for (var i = 0; i < o.Warmup; i++)
        {
            Step(record: false);
        }

        for (var i = 0; i < o.Repeats; i++)
        {
            Step(record: true);
        }

        var detail = new JsonObject();
        var total = 0.0;
        foreach (var (name, times) in parts)
        {
            var median = ForwardBenchmarkHarness.Median(times);
            total += median;
            summary[$"{key}/{name}/time_s"] = median;
            detail[name] = ForwardBenchmarkHarness.Stats(times);
        }

        summary[$"{key}/step/time_s"] = total;
        foreach (var name in parts.Keys)
        {
            summary[$"{key}/{name}/share"] = ForwardBenchmarkHarness.Median(parts[name]) / total;
        }

        var stats = source.Statistics;
        summary[$"{key}/generation/tokens_per_s"] = o.Batch * (double)o.NewTokens / ForwardBenchmarkHarness.Median(parts["generation"]);
        detail["generated_rows"] = stats.GeneratedRows;
        detail["mean_generated_length"] = stats.MeanGeneratedLength;
        detail["truncated_rows"] = stats.TruncatedRows;
        detail["scored_tokens_last_step"] = generatedTokens;
        return detail;
    }
}

using System.Text.Json.Nodes;
using Distill.Losses.Kernels;
using TorchSharp;
using static TorchSharp.torch;

namespace Distill.Benchmarks;

/// <summary>
/// bench.py's <c>train</c> section: one distillation step of the GPT-2-small-shaped student (seed + 1, train mode, no dropout)
/// against a same-shape frozen teacher (seed + 2), batch 4 × 128 random ids with 51 positions ignored, forward KL at T = 1
/// averaged over valid tokens, AdamW(lr 1e-4, β 0.9/0.999, eps 1e-8, weight decay 0.01).
/// </summary>
/// <remarks>
/// <see cref="Run(ModelBenchOptions, JsonObject)"/> is the naive step (full [B·T, V] logits, as bench.py's <c>naive</c> objective); <see cref="RunChunked"/>
/// is the same step with the chunked objective (<c>forward_kl_chunked</c> at α = 1, T = 1: the fused kernel over the
/// student's last hidden states and tied lm_head, the teacher's logits formed chunk by chunk from its hidden states,
/// automatic chunk size), key suffix <c>/chunked</c>.
/// </remarks>
internal static class TrainBenchmark
{
    internal static JsonObject Run(ModelBenchOptions o, JsonObject summary) => Run(o, summary, chunked: false);

    internal static JsonObject RunChunked(ModelBenchOptions o, JsonObject summary) => Run(o, summary, chunked: true);

    private static JsonObject Run(ModelBenchOptions o, JsonObject summary, bool chunked)
    {
        using var student = ForwardBenchmarkHarness.Gpt2Small(o.Layers, o.Seed + 1);
        using var teacher = ForwardBenchmarkHarness.Gpt2Small(o.Layers, o.Seed + 2);
        student.train();
        teacher.eval();
        foreach (var p in teacher.parameters())
        {
            p.requires_grad = false;
        }

        using var g = new Generator((ulong)o.Seed);
        var tokens = o.Batch * o.Seq;
        using var ids = torch.randint(0, 50257, [o.Batch, o.Seq], generator: g, dtype: ScalarType.Int64);
        using var ignored = torch.zeros(tokens, ScalarType.Bool);
        using (var perm = torch.randperm(tokens, generator: g))
        {
            ignored.index_fill_(0, perm[..(tokens / 10)], true);
        }

        var valid = tokens - (tokens / 10);
        // Labels for the chunked kernel: only the −100 mask matters to forward KL (the ids themselves are not read).
        using var labels = torch.zeros(tokens, ScalarType.Int64).masked_fill_(ignored, DistillationBatch.IgnoreIndex);
        using var optimizer = torch.optim.AdamW(student.parameters(), lr: 1e-4, beta1: 0.9, beta2: 0.999, eps: 1e-8, weight_decay: 0.01);
        var losses = new List<float>();

        void Step()
        {
            using var scope = torch.NewDisposeScope();
            optimizer.zero_grad();
            if (chunked)
            {
                Tensor teacherHidden;
                using (torch.no_grad())
                {
                    teacherHidden = teacher.Forward(new CausalLMInput { InputIds = ids, ComputeLogits = false, ReturnHiddenStates = true }).HiddenStates!;
                }

                var hidden = student.Forward(new CausalLMInput { InputIds = ids, ComputeLogits = false, ReturnHiddenStates = true }).HiddenStates!;
                var rows = hidden.reshape(tokens, -1);
                var source = new TeacherSource(null, teacherHidden.reshape(tokens, -1), teacher.LmHeadWeight);
                var chunkRows = ChunkSizeRule.Resolve(null, student.LmHeadWeight.shape[0], student.LmHeadWeight.shape[1]);
                var sum = FusedLinearDivergence.Apply(rows, student.LmHeadWeight, null, source, labels, new ForwardKlChunkDivergence(1.0, 1.0), chunkRows);
                var chunkedLoss = sum / valid;
                chunkedLoss.backward();
                optimizer.step();
                losses.Add(chunkedLoss.item<float>());
                return;
            }

            Tensor teacherLogits;
            using (torch.no_grad())
            {
                teacherLogits = teacher.Forward(new CausalLMInput { InputIds = ids }).Logits!;
            }

            var studentLogits = student.Forward(new CausalLMInput { InputIds = ids }).Logits!;
            var logpS = studentLogits.view(-1, 50257).log_softmax(-1);
            var logpT = teacherLogits.view(-1, 50257).log_softmax(-1);
            // KL(p_teacher || q_student) per token: kl_div(input = student log-probs, target = teacher log-probs).
            var kl = nn.functional.kl_div(logpS, logpT, reduction: nn.Reduction.None, log_target: true).sum(-1);
            var loss = kl.masked_fill(ignored, 0).sum() / valid;
            loss.backward();
            optimizer.step();
            losses.Add(loss.item<float>());
        }

        var key = $"train/gpt2_L{o.Layers}_b{o.Batch}x{o.Seq}" + (chunked ? "/chunked" : string.Empty);
        Console.Error.WriteLine($"[bench] {key}");
        var firstStart = System.Diagnostics.Stopwatch.StartNew();
        var firstPeak = ForwardBenchmarkHarness.PeakRssIncreaseMb(Step);
        var first = firstStart.Elapsed.TotalSeconds;
        var times = ForwardBenchmarkHarness.Time(o with { Warmup = 0 }, Step); // the first step was the warm-up
        var median = ForwardBenchmarkHarness.Median(times);
        summary[$"{key}/time_s"] = median;
        summary[$"{key}/tokens_per_s"] = tokens / median;
        summary[$"{key}/first_step_peak_rss_increase_mb"] = firstPeak;
        var detail = ForwardBenchmarkHarness.Stats(times);
        detail["first_step_s"] = first;
        detail["first_step_peak_rss_increase_mb"] = firstPeak;
        detail["loss_first_step"] = losses[0];
        return detail;
    }
}

using static TorchSharp.torch;

namespace Distill.Losses.Tests;

/// <summary>
/// <see cref="LossesOptions.ChunkedBfloat16Matmuls"/>: the fused kernel with bfloat16 matrix products stays within an error
/// bound derived from bfloat16's precision, against the exact float32 path, for the loss, dL/dh, dL/dW and dL/db.
/// </summary>
/// <remarks>
/// <para>
/// bfloat16 keeps 8 significant bits, so rounding a float32 has relative error at most u = 2⁻⁹. A chunk logit
/// s = Σ_i h_i·w_i + b is formed from rounded h and w (each ≤ u relative), accumulated in float32 (error negligible at
/// H = 64), and the product is rounded to bfloat16 once (≤ u·|s − b| ≤ u·Σ_i |h_i||w_i|); the bias is added in float32.
/// Hence |Δs| ≤ (2u + u² + u)·Σ_i |h_i||w_i| ≤ 3.01u·(|h|·|W|ᵀ), and E_s = its maximum over the batch bounds every logit error.
/// </para>
/// <para>
/// Loss, (1 − α)·CE + α·KL(p_t ‖ softmax(s/T)) per scored row: its gradient in s has L1 norm ≤ 2(1 − α) + 2α/T, so
/// |ΔL| ≤ N·E_s·(2(1 − α) + 2α/T) to first order. The logit gradient g = (1 − α)(q − onehot) + (α/T)(q_T − p_t) moves by
/// ‖Δg‖₁ ≤ (2(1 − α) + 2α/T²)·E_s (softmax(s/T) is 2/T-Lipschitz from ∞-norm to 1-norm). dL/dh = g·W is a bfloat16
/// product: |Δ| ≤ 3.01u·(|g|·|W|) (g and W rounded, product rounded) + ‖Δg‖₁·max|W|. dL/dW = Σ_rows gᵀ·h stays a float32
/// product: |Δ| ≤ N·‖Δg‖₁·max|h|; dL/db = Σ_rows g: N·‖Δg‖₁. Every bound gets a factor 1.5 for second-order terms. The
/// test also checks that the option changes the result (the bfloat16 path ran).
/// </para>
/// </remarks>
[Collection("Sequential")]
public sealed class Bfloat16KernelTests
{
    private const long V = 300;
    private const long H = 64;
    private const double U = 1.0 / 512;                                                  // bfloat16 unit roundoff, 2⁻⁹

    [Theory]
    [InlineData(1.0, 1.0)]
    [InlineData(0.5, 2.0)]
    public void Compute_Bfloat16Products_StayWithinTheDerivedBound(double alpha, double temperature)
    {
        using var scope = NewDisposeScope();
        var student = new TinyCausalLM(seed: 41, vocab: V, hidden: H, withBias: true);
        using (no_grad())
        {
            student.LmHeadWeight.mul_(0.3);
            student.LmHeadBias!.mul_(20);                                                // a bias the bf16 path must not lose
        }

        var labels = TestData.Labels(42, 4, 16, V, (0, 3), (2, 9));
        var teacher = TestData.Logits(43, 4, 16, V);
        var hidden = randn(4, 16, H, generator: new Generator(44));
        var (loss32, h32, w32, b32) = Run(student, hidden, teacher, labels, alpha, temperature, bf16: false);
        var (loss16, h16, w16, b16) = Run(student, hidden, teacher, labels, alpha, temperature, bf16: true);

        // The float32 logit gradient g (per row, unnormalised), from autograd over full logits.
        var logits = nn.functional.linear(hidden, student.LmHeadWeight, student.LmHeadBias).detach().requires_grad_(true);
        var naive = TestData.Create(ObjectiveNames.ForwardKl, o => Configure(o, alpha, temperature, bf16: false))
            .Compute(TestData.Context(logits, teacher, labels, student));
        naive.LossSum.backward();
        var g = logits.grad!.reshape(-1, V).abs();
        var h = hidden.reshape(-1, H).abs();
        var w = student.LmHeadWeight.detach().abs();
        var n = labels.ne(DistillationBatch.IgnoreIndex).sum().item<long>();

        var es = 3.01 * U * h.mm(w.t()).max().item<float>();
        var dg1 = ((2 * (1 - alpha)) + (2 * alpha / (temperature * temperature))) * es;
        var lossBound = 1.5 * n * es * ((2 * (1 - alpha)) + (2 * alpha / temperature));
        var wBound = 1.5 * n * dg1 * h.max().item<float>();
        var hBound = 1.5 * ((3.01 * U * g.mm(w)) + (dg1 * w.max().item<float>()));
        var bBound = 1.5 * n * dg1;

        Assert.True(Math.Abs(loss16 - loss32) <= lossBound, $"loss: |Δ| = {Math.Abs(loss16 - loss32):E3} > bound {lossBound:E3}");
        Assert.True((w16 - w32).abs().max().item<float>() <= wBound, $"dL/dW: max |Δ| = {(w16 - w32).abs().max().item<float>():E3} > bound {wBound:E3}");
        AssertWithin(h32.reshape(-1, H), h16.reshape(-1, H), hBound, "dL/dh");
        Assert.True((b16 - b32).abs().max().item<float>() <= bBound, $"dL/db: max |Δ| = {(b16 - b32).abs().max().item<float>():E3} > bound {bBound:E3}");
        Assert.True(loss16 != loss32 || (w16 - w32).abs().max().item<float>() > 0, "the bfloat16 option changed nothing: its path did not run");
    }

    private static void Configure(LossesOptions o, double alpha, double temperature, bool bf16)
    {
        o.ChunkSize = 16;
        o.Divergence.KdRate = alpha;
        o.Divergence.Temperature = temperature;
        o.ChunkedBfloat16Matmuls = bf16;
    }

    private static (double Loss, Tensor GradH, Tensor GradW, Tensor GradB) Run(
        TinyCausalLM student, Tensor hidden, Tensor teacher, Tensor labels, double alpha, double temperature, bool bf16)
    {
        student.Module.zero_grad();
        var h = hidden.clone().requires_grad_(true);
        var r = TestData.Create(ObjectiveNames.ForwardKl + ObjectiveNames.ChunkedSuffix, o => Configure(o, alpha, temperature, bf16)).Compute(new ObjectiveContext
        {
            Batch = TestData.Batch(labels),
            Student = new CausalLMOutput(null, h, null),
            Teacher = new TeacherOutput { Logits = teacher },
            StudentModel = student,
        });
        r.LossSum.backward();
        return (TestData.Value(r.LossSum), h.grad!, student.LmHeadWeight.grad!.clone(), student.LmHeadBias!.grad!.clone());
    }

    private static void AssertWithin(Tensor expected, Tensor actual, Tensor bound, string what)
    {
        var excess = ((actual - expected).abs() - bound).max().item<float>();
        Assert.True(excess <= 0, $"{what}: an element exceeds its bound by {excess:E3} (max |Δ| = {(actual - expected).abs().max().item<float>():E3})");
    }
}

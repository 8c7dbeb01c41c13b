using static TorchSharp.torch;

namespace Distill.Losses.Kernels;

/// <summary>Where the teacher's logits come from in a fused kernel: full logits, or hidden states and an lm_head computed chunk by chunk.</summary>
/// <param name="Logits">[N, V] (no grad), or <see langword="null"/>.</param>
/// <param name="HiddenStates">[N, H_t] (no grad), used with <paramref name="LmHeadWeight"/> when <paramref name="Logits"/> is null.</param>
/// <param name="LmHeadWeight">[V, H_t].</param>
/// <param name="LmHeadBias">[V] or <see langword="null"/>.</param>
internal sealed record TeacherSource(Tensor? Logits, Tensor? HiddenStates = null, Tensor? LmHeadWeight = null, Tensor? LmHeadBias = null)
{
    /// <summary>No teacher (teacher-free losses such as chunked CE).</summary>
    public static TeacherSource None { get; } = new(Logits: null);

    /// <summary>Teacher logits [rows, V] for rows [start, start + length).</summary>
    internal Tensor? Chunk(long start, long length, long vocab)
    {
        if (Logits is not null)
        {
            return Logits.narrow(0, start, length).narrow(-1, 0, vocab);
        }

        if (HiddenStates is null || LmHeadWeight is null)
        {
            return null;
        }

        var w = LmHeadWeight.narrow(0, 0, vocab);
        return nn.functional.linear(HiddenStates.narrow(0, start, length), w, LmHeadBias?.narrow(0, 0, vocab));
    }
}

/// <summary>
/// Fused lm_head projection + divergence over chunks of rows (Liger-style): for each chunk of <c>ChunkSize</c> rows the
/// student logits h·Wᵀ (+ b) are formed, the chunk loss and its gradient w.r.t. those logits are computed, the logits are
/// dropped, and the gradients w.r.t. h, W and b are accumulated. Only [ChunkSize, V] logits ever exist, for the student
/// and for a teacher given as hidden states + lm_head. The backward returns the precomputed gradients (scaled by the
/// incoming gradient), so the ordinary <c>loss.backward()</c> drives it.
/// </summary>
/// <remarks>Device-agnostic (plain TorchSharp ops). Gradients are accumulated in float32 and cast to the parameter dtype.</remarks>
internal sealed class FusedLinearDivergence : autograd.SingleTensorFunction<FusedLinearDivergence>
{
    /// <inheritdoc/>
    public override string Name => nameof(FusedLinearDivergence);

    /// <summary>Computes the summed loss of <paramref name="divergence"/> over all rows.</summary>
    /// <param name="hidden">Student hidden states [N, H] (requires grad when training).</param>
    /// <param name="weight">Student lm_head weight [V, H] (may be frozen, e.g. under LoRA).</param>
    /// <param name="bias">Student lm_head bias [V], or <see langword="null"/>.</param>
    /// <param name="teacher">The teacher's logits source.</param>
    /// <param name="labels">[N] int64, aligned; −100 = ignored.</param>
    /// <param name="divergence">The chunk loss.</param>
    /// <param name="chunkSize">Rows per chunk.</param>
    /// <param name="finiteCheck">When not null, called with each chunk's student logits and its first row index (NaN/inf reporting).</param>
    /// <returns>A float32 scalar with a gradient to <paramref name="hidden"/>, <paramref name="weight"/> and <paramref name="bias"/>.</returns>
    internal static Tensor Apply(
        Tensor hidden, Tensor weight, Tensor? bias, TeacherSource teacher, Tensor labels, ChunkDivergence divergence, int chunkSize,
        Action<Tensor, long>? finiteCheck = null)
    {
        ArgumentNullException.ThrowIfNull(hidden);
        ArgumentNullException.ThrowIfNull(weight);
        ArgumentNullException.ThrowIfNull(teacher);
        ArgumentNullException.ThrowIfNull(labels);
        ArgumentNullException.ThrowIfNull(divergence);
        ArgumentOutOfRangeException.ThrowIfLessThan(chunkSize, 1);
        if (hidden.dim() != 2 || weight.dim() != 2 || hidden.shape[1] != weight.shape[1])
        {
            throw new ArgumentException($"Fused kernel: hidden states must be [N, H] and lm_head weight [V, H]; got [{string.Join(", ", hidden.shape)}] and [{string.Join(", ", weight.shape)}].");
        }

        if (labels.dim() != 1 || labels.shape[0] != hidden.shape[0])
        {
            throw new ArgumentException($"Fused kernel: labels must be [N] = [{hidden.shape[0]}], got [{string.Join(", ", labels.shape)}].");
        }

        var args = new Arguments(teacher, divergence, chunkSize, finiteCheck);
        // Tensors are passed as variables (null for an absent bias); the configuration travels as one non-tensor argument.
        return apply(hidden, weight, bias!, labels, args);
    }

    /// <inheritdoc/>
    public override Tensor forward(autograd.AutogradContext ctx, params object[] vars)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ArgumentNullException.ThrowIfNull(vars);
        var hidden = (Tensor)vars[0];
        var weight = (Tensor)vars[1];
        var bias = vars[2] as Tensor;
        var labels = (Tensor)vars[3];
        var args = (Arguments)vars[4];
        long n = hidden.shape[0], vocab = weight.shape[0];
        var wantH = hidden.requires_grad;
        var wantW = weight.requires_grad;
        var wantB = bias is not null && bias.requires_grad;

        using var scope = NewDisposeScope();
        var gradH = wantH ? empty_like(hidden) : null;
        var gradW = wantW ? zeros(weight.shape, dtype: ScalarType.Float32, device: weight.device) : null;
        var gradB = wantB ? zeros(bias!.shape, dtype: ScalarType.Float32, device: bias.device) : null;
        var loss = zeros(Array.Empty<long>(), dtype: ScalarType.Float32, device: hidden.device);
        for (long start = 0; start < n; start += args.ChunkSize)
        {
            using var chunkScope = NewDisposeScope();
            var length = Math.Min(args.ChunkSize, n - start);
            var h = hidden.narrow(0, start, length);
            var y = labels.narrow(0, start, length);
            var s = nn.functional.linear(h, weight, bias);                              // [c, V]: the only student logits that exist
            args.FiniteCheck?.Invoke(s, start);
            var t = args.Divergence.NeedsTeacher ? args.Teacher.Chunk(start, length, vocab) : null;
            if (args.Divergence.NeedsTeacher && t is null)
            {
                throw new InvalidOperationException("Fused kernel: the divergence needs the teacher, but neither teacher logits nor teacher hidden states + lm_head were given.");
            }

            Tensor sum, g;
            if (!args.Divergence.TrySumAndGradient(s, t, y, out sum, out g))
            {
                using var enable = enable_grad();
                var leaf = s.detach().requires_grad_(true);
                sum = args.Divergence.Sum(leaf, t, y);
                g = autograd.grad([sum], [leaf])[0];
                sum = sum.detach();
            }

            loss.add_(sum);
            g = g.to(weight.dtype);
            if (gradH is not null)
            {
                gradH.narrow(0, start, length).copy_(g.mm(weight));                     // dL/dh = g·W
            }

            gradW?.add_(g.t().mm(h).to(ScalarType.Float32));                           // dL/dW += gᵀ·h
            gradB?.add_(g.sum(0).to(ScalarType.Float32));
        }

        ctx.save_data("grads", new SavedGrads(
            gradH?.MoveToOuterDisposeScope(),
            gradW?.to(weight.dtype).MoveToOuterDisposeScope(),
            gradB?.to(bias!.dtype).MoveToOuterDisposeScope(),
            args.Teacher));
        return loss.MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ArgumentNullException.ThrowIfNull(grad_output);
        var saved = (SavedGrads)ctx.get_data("grads");
        // Like Liger: skip the scaling when the incoming gradient is exactly 1 (the usual loss.backward()).
        var one = grad_output.to(ScalarType.Float32).item<float>() == 1f;
        Tensor? Scale(Tensor? g) => g is null ? null : one ? g : g * grad_output.to(g.dtype);
        var result = new List<Tensor> { Scale(saved.Hidden)!, Scale(saved.Weight)!, Scale(saved.Bias)!, null!, null! };
        saved.Release();
        return result;
    }

    private sealed record Arguments(TeacherSource Teacher, ChunkDivergence Divergence, int ChunkSize, Action<Tensor, long>? FiniteCheck);

    /// <summary>The gradients computed in forward; held as data (not saved variables) and released after backward.</summary>
    private sealed class SavedGrads(Tensor? hidden, Tensor? weight, Tensor? bias, TeacherSource teacher)
    {
        public Tensor? Hidden { get; private set; } = hidden;

        public Tensor? Weight { get; private set; } = weight;

        public Tensor? Bias { get; private set; } = bias;

        public TeacherSource Teacher { get; } = teacher;

        public void Release()
        {
            Hidden = Weight = Bias = null;
        }
    }
}

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

    /// <summary>Gets the sparse teacher's top-k vocabulary ids [N, K] int64, or <see langword="null"/> for a dense teacher.</summary>
    public Tensor? TopKIds { get; init; }

    /// <summary>Gets the sparse teacher's top-k log-probabilities [N, K] at temperature 1.</summary>
    public Tensor? TopKLogProbs { get; init; }

    /// <summary>Gets the sparse teacher's log tail mass [N], or <see langword="null"/>.</summary>
    public Tensor? TopKLogTailMass { get; init; }

    /// <summary>A sparse top-k teacher: rows of ids, log-probs and (optionally) log tail mass; <see cref="Chunk"/> returns null.</summary>
    /// <param name="ids">[N, K] int64.</param>
    /// <param name="logProbs">[N, K].</param>
    /// <param name="logTailMass">[N] or <see langword="null"/>.</param>
    /// <returns>The source.</returns>
    public static TeacherSource Sparse(Tensor ids, Tensor logProbs, Tensor? logTailMass) =>
        new(Logits: null) { TopKIds = ids, TopKLogProbs = logProbs, TopKLogTailMass = logTailMass };

    /// <summary>Gets a value indicating whether <see cref="Chunk"/> returns a fresh tensor (computed from hidden states) that the caller may overwrite.</summary>
    internal bool ChunksAreFresh => Logits is null && HiddenStates is not null;

    /// <summary>Teacher logits [rows, V] for rows [start, start + length): a view of the given logits, or a fresh [rows, V] tensor.</summary>
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
        var h = HiddenStates.narrow(0, start, length);
        if (LowPrecisionWeight is { } low && h.dtype == ScalarType.Float32)
        {
            // bfloat16 product (float32 accumulation inside libtorch), back to float32, bias added in float32.
            var t = nn.functional.linear(h.to(ScalarType.BFloat16), low.narrow(0, 0, vocab)).to(ScalarType.Float32);
            return LmHeadBias is null ? t : t.add_(LmHeadBias.narrow(0, 0, vocab), TorchScalars.One);
        }

        return nn.functional.linear(h, w, LmHeadBias?.narrow(0, 0, vocab));
    }

    /// <summary>Gets the teacher lm_head in bfloat16 when the kernel runs its products in bfloat16 (set by the kernel).</summary>
    internal Tensor? LowPrecisionWeight { get; init; }
}

/// <summary>
/// Fused lm_head projection + divergence over chunks of rows (Liger-style): for each chunk of <c>ChunkSize</c> rows the
/// student logits h·Wᵀ (+ b) (+ the lm_head adapter's delta) are formed, the chunk loss and its gradient w.r.t. those logits
/// are computed, the logits are dropped, and the gradients w.r.t. h, W, b and the adapter's parameters are accumulated. Only
/// [ChunkSize, V] logits ever exist, for the student and for a teacher given as hidden states + lm_head. The backward hands
/// the precomputed gradients over (scaled by the incoming gradient), so the ordinary <c>loss.backward()</c> drives it.
/// </summary>
/// <remarks>
/// <para>Device-agnostic (plain TorchSharp ops). Gradients are accumulated in float32 and cast to the parameter dtype.</para>
/// <para>
/// Memory: the lm_head weight gradient [V, H] exists once. It is accumulated in one float32 buffer during forward, and when
/// the weight is a leaf (a real parameter, tied or not) backward makes that buffer the parameter's <c>.grad</c> (or adds it
/// in place to an existing <c>.grad</c>) instead of returning it to autograd, whose gradient accumulation would otherwise
/// clone it while this wrapper still holds a handle. A non-leaf weight (a vocabulary slice) gets its gradient through
/// autograd as usual. Consequence: <c>autograd.grad(loss, weight)</c> on a leaf weight sees no gradient; use <c>backward()</c>.
/// </para>
/// <para>
/// Two-pass divergences (<see cref="ChunkDivergence.Prepare"/>, e.g. chunked ATKD whose batch-median split needs every
/// row's statistic) get a first pass over the teacher's chunks before the loss pass.
/// </para>
/// </remarks>
internal sealed class FusedLinearDivergence : autograd.SingleTensorFunction<FusedLinearDivergence>
{
    private const int FirstAdapterVariable = 5;

    /// <inheritdoc/>
    public override string Name => nameof(FusedLinearDivergence);

    /// <summary>Computes the summed loss of <paramref name="divergence"/> over all rows.</summary>
    /// <param name="hidden">Student hidden states [N, H] (requires grad when training).</param>
    /// <param name="weight">Student lm_head weight [V, H] (may be frozen, e.g. under LoRA).</param>
    /// <param name="bias">Student lm_head bias [V], or <see langword="null"/>.</param>
    /// <param name="teacher">The teacher's logits source.</param>
    /// <param name="labels">[N] int64, aligned; −100 = ignored.</param>
    /// <param name="divergence">The chunk loss.</param>
    /// <param name="chunkSize">Rows per chunk (see <see cref="ChunkSizeRule"/> for the automatic choice).</param>
    /// <param name="finiteCheck">When not null, called with each chunk's student logits and its first row index (NaN/inf reporting).</param>
    /// <param name="adapter">
    /// An additive adapter on the lm_head (e.g. LoRA: the module returns the [c, V] delta for [c, H] hidden rows), or
    /// <see langword="null"/>. Its trainable parameters get gradients like any kernel input (returned through autograd).
    /// </param>
    /// <param name="bfloat16">
    /// Run the logits and dL/dh products in bfloat16 (float32 accumulation, float32 buffers) when the weight is float32
    /// (<see cref="LossesOptions.ChunkedBfloat16Matmuls"/>); dL/dW and the adapter's own products keep their dtype.
    /// </param>
    /// <returns>A float32 scalar with a gradient to <paramref name="hidden"/>, <paramref name="weight"/>, <paramref name="bias"/> and the adapter.</returns>
    internal static Tensor Apply(
        Tensor hidden, Tensor weight, Tensor? bias, TeacherSource teacher, Tensor labels, ChunkDivergence divergence, int chunkSize,
        Action<Tensor, long>? finiteCheck = null, LmHeadAdapter? adapter = null, bool bfloat16 = false)
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

        var adapterParameters = adapter?.Parameters.ToArray() ?? [];

        // Gradients are computed only when autograd will call backward (grad mode on and a differentiable input).
        var withGrad = is_grad_enabled() &&
            (hidden.requires_grad || weight.requires_grad || (bias?.requires_grad ?? false) || adapterParameters.Length > 0);
        var args = new Arguments(teacher, divergence, chunkSize, finiteCheck, withGrad, adapter?.Module,
            bfloat16 && weight.dtype == ScalarType.Float32 && hidden.dtype == ScalarType.Float32);
        // Tensors are passed as variables (null for an absent bias); the configuration travels as one non-tensor argument;
        // the adapter's trainable parameters follow as variables so that backward can return their gradients.
        var vars = new object[FirstAdapterVariable + adapterParameters.Length];
        vars[0] = hidden;
        vars[1] = weight;
        vars[2] = bias!;
        vars[3] = labels;
        vars[4] = args;
        adapterParameters.CopyTo(vars, FirstAdapterVariable);
        return apply(vars);
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
        var adapterParameters = vars.Skip(FirstAdapterVariable).Cast<Tensor>().ToArray();
        long n = hidden.shape[0], vocab = weight.shape[0];
        var wantH = args.WithGrad && hidden.requires_grad;
        var wantW = args.WithGrad && weight.requires_grad;
        var wantB = args.WithGrad && bias is not null && bias.requires_grad;
        var wantAdapter = args.WithGrad && adapterParameters.Length > 0;

        using var scope = NewDisposeScope();
        // bfloat16 products: the weights are rounded once per call (the student's [V, H] copy costs V·H·2 bytes).
        var lowWeight = args.Bfloat16 ? weight.detach().to(ScalarType.BFloat16) : null;
        var teacherSource = args.Bfloat16 && args.Teacher.ChunksAreFresh
            ? args.Teacher with { LowPrecisionWeight = args.Teacher.LmHeadWeight!.to(ScalarType.BFloat16) }
            : args.Teacher;
        var divergence = args.Divergence.Prepare(teacherSource, labels, args.ChunkSize, vocab);
        var gradH = wantH ? zeros_like(hidden) : null;
        var gradW = wantW ? zeros(weight.shape, dtype: ScalarType.Float32, device: weight.device) : null;
        var gradB = wantB ? zeros(bias!.shape, dtype: ScalarType.Float32, device: bias.device) : null;
        var gradA = adapterParameters.Select(p => wantAdapter ? zeros_like(p, dtype: ScalarType.Float32) : null).ToArray();
        var loss = zeros(Array.Empty<long>(), dtype: ScalarType.Float32, device: hidden.device);
        for (long start = 0; start < n; start += args.ChunkSize)
        {
            using var chunkScope = NewDisposeScope();
            var length = Math.Min(args.ChunkSize, n - start);
            var h = hidden.narrow(0, start, length);
            var y = labels.narrow(0, start, length);
            var hLow = lowWeight is null ? null : h.to(ScalarType.BFloat16);
            var s = hLow is null
                ? nn.functional.linear(h, weight, bias)                                 // [c, V]: the only student logits that exist
                : LowPrecisionLogits(hLow, lowWeight!, bias);
            var (delta, adapterInput) = AdapterDelta(args.Adapter, h, wantH, wantAdapter);
            if (delta is not null)
            {
                s.add_(delta.detach().to(s.dtype), TorchScalars.One);
            }

            if (s.dtype != ScalarType.Float32 && s.dtype != ScalarType.Float64)
            {
                var f = s.to(ScalarType.Float32);
                s.Dispose();
                s = f;
            }

            args.FiniteCheck?.Invoke(s, start);
            var t = divergence.NeedsTeacherLogits ? teacherSource.Chunk(start, length, vocab) : null;
            if (divergence.NeedsTeacherLogits && t is null)
            {
                throw new InvalidOperationException("Fused kernel: the divergence needs the teacher, but neither teacher logits nor teacher hidden states + lm_head were given.");
            }

            if (!args.WithGrad)
            {
                loss.add_(divergence.Sum(s, t, y, start), TorchScalars.One);
                continue;
            }

            Tensor sum, g;
            if (!divergence.TrySumAndGradient(s, t, y, start, teacherSource.ChunksAreFresh, out sum, out g))
            {
                using var enable = enable_grad();
                var leaf = s.detach().requires_grad_(true);
                sum = divergence.Sum(leaf, t, y, start);
                g = autograd.grad([sum], [leaf])[0];
                sum = sum.detach();
                leaf.Dispose();
                s.Dispose();
            }

            t?.Dispose();
            loss.add_(sum, TorchScalars.One);
            if (delta is not null && (adapterInput is not null || wantAdapter))
            {
                // The adapter's own backward on this chunk: dL/d(adapter input) and dL/d(adapter parameters) for gradient g.
                var inputs = (adapterInput is null ? Array.Empty<Tensor>() : [adapterInput]).Concat(adapterParameters).ToArray();
                var grads = autograd.grad([delta], inputs, [g.to(delta.dtype)], allow_unused: true);
                delta.Dispose();
                var k = 0;
                if (adapterInput is not null)
                {
                    gradH!.narrow(0, start, length).add_(grads[k++], TorchScalars.One);
                }

                for (var i = 0; i < adapterParameters.Length; i++, k++)
                {
                    if (grads[k] is not null && !grads[k].IsInvalid)
                    {
                        gradA[i]!.add_(grads[k], TorchScalars.One);
                    }
                }
            }

            var gw = weight.dtype == g.dtype ? g : g.to(weight.dtype);
            if (hLow is not null)
            {
                // dL/dh += g·W as a bfloat16 product ([c, H] output). dL/dW stays a float32 addmm_ in place below: a bfloat16
                // product would return a fresh [V, H] tensor per chunk to convert and add (measured slower, and +V·H·4 B).
                gradH?.narrow(0, start, length).add_(g.to(ScalarType.BFloat16).mm(lowWeight!), TorchScalars.One);
            }
            else
            {
                gradH?.narrow(0, start, length).addmm_(gw, weight);                    // dL/dh += g·W (in place, no [c, H] temporary)
            }

            if (gradW is not null)
            {
                if (weight.dtype == ScalarType.Float32)
                {
                    gradW.addmm_(gw.t(), h);                                            // dL/dW += gᵀ·h, in place
                }
                else
                {
                    gradW.add_(gw.t().mm(h).to(ScalarType.Float32), TorchScalars.One);
                }
            }

            gradB?.add_(g.sum(dim: 0L).to(ScalarType.Float32), TorchScalars.One);
        }

        if (args.WithGrad)
        {
            // Owned by the context (not by any dispose scope) until backward hands them over and frees them.
            ctx.save_data("grads", new SavedGrads(
                gradH?.DetachFromDisposeScope(),
                gradW is null ? null : Cast(gradW, weight.dtype).DetachFromDisposeScope(),
                weight.is_leaf ? weight : null,
                gradB is null ? null : Cast(gradB, bias!.dtype).DetachFromDisposeScope(),
                [.. gradA.Select((a, i) => a is null ? null : Cast(a, adapterParameters[i].dtype).DetachFromDisposeScope())]));
        }

        return loss.MoveToOuterDisposeScope();
    }

    /// <inheritdoc/>
    public override List<Tensor> backward(autograd.AutogradContext ctx, Tensor grad_output)
    {
        ArgumentNullException.ThrowIfNull(ctx);
        ArgumentNullException.ThrowIfNull(grad_output);
        using var saved = (SavedGrads)ctx.get_data("grads");
        // Like Liger: skip the scaling when the incoming gradient is exactly 1 (the usual loss.backward()).
        var one = grad_output.to(ScalarType.Float32).item<float>() == 1f;
        // The returned tensors are new handles created here (in the caller's step scope when backward runs on its thread);
        // the context's own handles are released at once (using above), so nothing outlives the step.
        Tensor? Scale(Tensor? g) => g is null ? null : one ? g.alias() : g.mul_(grad_output.to(g.dtype)).alias();
        var result = new List<Tensor> { Scale(saved.Hidden)!, null!, Scale(saved.Bias)!, null!, null! };
        if (saved.Weight is not null)
        {
            if (saved.LeafWeight is not null)
            {
                // Hold the weight gradient once: the buffer becomes (or is added in place to) the parameter's .grad.
                using (no_grad())
                {
                    var g = Scale(saved.Weight)!;
                    var existing = saved.LeafWeight.grad;
                    if (existing is null || existing.IsInvalid)
                    {
                        saved.LeafWeight.grad = g;
                    }
                    else
                    {
                        existing.add_(g, TorchScalars.One);
                        existing.Dispose();
                    }

                    g.Dispose();
                }
            }
            else
            {
                result[1] = Scale(saved.Weight)!;
            }
        }

        result.AddRange(saved.Adapter.Select(Scale)!);
        return result;
    }

    /// <summary>The lm_head adapter's delta for hidden rows <paramref name="h"/>, with its graph when gradients are wanted.</summary>
    private static (Tensor? Delta, Tensor? Input) AdapterDelta(nn.Module<Tensor, Tensor>? adapter, Tensor h, bool wantH, bool wantAdapter)
    {
        if (adapter is null)
        {
            return (null, null);
        }

        if (!wantH && !wantAdapter)
        {
            using (no_grad())
            {
                return (adapter.forward(h), null);
            }
        }

        using var enable = enable_grad();
        var input = wantH ? h.detach().requires_grad_(true) : null;
        Tensor delta;
        using (var inner = NewDisposeScope())
        {
            // Only the delta (and its graph) leaves: the adapter's other [c, V] intermediates are released here.
            delta = adapter.forward(input ?? h.detach()).MoveToOuterDisposeScope();
        }

        return (delta, input);
    }

    private static Tensor Cast(Tensor t, ScalarType dtype) => t.dtype == dtype ? t : t.to(dtype);

    /// <summary>Student chunk logits from a bfloat16 product, in float32, the bias added in float32.</summary>
    private static Tensor LowPrecisionLogits(Tensor hLow, Tensor wLow, Tensor? bias)
    {
        var s = nn.functional.linear(hLow, wLow).to(ScalarType.Float32);
        return bias is null ? s : s.add_(bias.detach().to(ScalarType.Float32), TorchScalars.One);
    }

    private sealed record Arguments(
        TeacherSource Teacher, ChunkDivergence Divergence, int ChunkSize, Action<Tensor, long>? FiniteCheck, bool WithGrad,
        nn.Module<Tensor, Tensor>? Adapter, bool Bfloat16);

    /// <summary>The gradients computed in forward; held as context data (not saved variables) and disposed in backward.</summary>
    private sealed class SavedGrads(Tensor? hidden, Tensor? weight, Tensor? leafWeight, Tensor? bias, Tensor?[] adapter) : IDisposable
    {
        public Tensor? Hidden { get; private set; } = hidden;

        public Tensor? Weight { get; private set; } = weight;

        /// <summary>Gets the lm_head weight when it is a leaf (its .grad receives <see cref="Weight"/> directly); not owned.</summary>
        public Tensor? LeafWeight { get; } = leafWeight;

        public Tensor? Bias { get; private set; } = bias;

        public Tensor?[] Adapter { get; } = adapter;

        public void Dispose()
        {
            Hidden?.Dispose();
            Weight?.Dispose();
            Bias?.Dispose();
            Hidden = Weight = Bias = null;
            for (var i = 0; i < Adapter.Length; i++)
            {
                Adapter[i]?.Dispose();
                Adapter[i] = null;
            }
        }
    }
}

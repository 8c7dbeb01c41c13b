using static TorchSharp.torch;

namespace Distill.Losses;

/// <summary>Shared numeric helpers: fp32 temperature scaling, inf masks and safe log-probabilities.</summary>
internal static class LossMath
{
    /// <summary>
    /// Casts to float32 (float64 stays float64, for gradient checks) and divides by <paramref name="temperature"/>; the cast
    /// comes first, so bf16 logits are not rounded again.
    /// </summary>
    internal static Tensor Scale(Tensor logits, double temperature)
    {
        var f = ToCompute(logits);
        return temperature == 1.0 ? f : f.Div(temperature);
    }

    /// <summary>The compute dtype of the losses: float32, or float64 when the input is float64.</summary>
    internal static Tensor ToCompute(Tensor x) => x.dtype == ScalarType.Float64 ? x : x.to(ScalarType.Float32);

    /// <summary>Elements where either logit is ±inf (DSKD zeroes these terms before the vocabulary sum).</summary>
    internal static Tensor InfMask(Tensor a, Tensor b) => a.isinf().logical_or(b.isinf());

    /// <summary>Replaces masked entries by 0 so that a later product never forms 0·inf (which would poison gradients through <c>where</c>).</summary>
    internal static Tensor Sanitize(Tensor x, Tensor mask) => Fill(x, mask, 0.0);

    /// <summary>
    /// <c>x.masked_fill(mask, value)</c> with a <see cref="TorchSharp.Scalar"/> that stays alive for the whole call (see
    /// <see cref="TorchScalars"/>: an implicit double → Scalar temporary crashed <c>masked_fill</c> in
    /// <c>c10::Scalar::toFloat</c> while a cached teacher prepared the next batch on another thread).
    /// </summary>
    internal static Tensor Fill(Tensor x, Tensor mask, double value) => x.MaskedFill(mask, value);

    /// <summary>Labels with −100 replaced by 0, safe for <c>gather</c>/<c>scatter</c>.</summary>
    internal static Tensor SafeTargets(Tensor labels) =>
        labels.masked_fill(labels.eq(TorchScalars.Constant(DistillationBatch.IgnoreIndex)), TorchScalars.Constant(0));

    /// <summary>The one-hot mask of the target id, [..., V] bool.</summary>
    internal static Tensor TargetMask(Tensor logits, Tensor labels)
    {
        var idx = SafeTargets(labels).unsqueeze(-1);
        return zeros_like(logits, dtype: ScalarType.Bool).scatter(-1, idx, ones_like(idx, dtype: ScalarType.Bool));
    }

    /// <summary>
    /// log of the two-bin distribution b = [p(y), Σ_{v≠y} p(v)] from log-probabilities, [..., 2], computed in log space
    /// (finite even when p(y) underflows).
    /// </summary>
    internal static Tensor LogBinary(Tensor logProbs, Tensor targetMask, Tensor labels)
    {
        var logTarget = logProbs.gather(-1, SafeTargets(labels).unsqueeze(-1));                           // [..., 1]
        var logOther = Fill(logProbs, targetMask, double.NegativeInfinity).logsumexp(-1, keepdim: true); // [..., 1]
        return cat([logTarget, logOther], -1);
    }

    /// <summary>
    /// Σ over the last dim of p·(log p − log q) with both in log space; terms where either side is −inf (p = 0, or an
    /// excluded entry) count 0.
    /// </summary>
    internal static Tensor KlFromLogs(Tensor logP, Tensor logQ)
    {
        var zeroP = logP.isneginf().logical_or(logQ.isneginf());
        var lp = Sanitize(logP, zeroP);
        var lq = Sanitize(logQ, zeroP);
        // kl_div(input = log q, target = log p, log_target) = exp(log p)·(log p − log q) = KL(p || q) elementwise.
        var kl = nn.functional.kl_div(lq, lp, reduction: nn.Reduction.None, log_target: true);
        return Fill(kl, zeroP, 0.0).sum(-1);
    }
}

using System.Globalization;
using Microsoft.Extensions.Logging;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Distill.Training;

/// <summary>
/// One optimizer step: forward/backward over the micro-batches of an accumulation window, normalisation by the window's
/// summed <see cref="ObjectiveResult.Normalizer"/>, global-norm clipping, the non-finite guard and AdamW.
/// </summary>
/// <remarks>
/// Everything stays on the device: the loss, normaliser, scored-token and metric sums are accumulated as tensors and the
/// gradient norm is computed as a tensor (libtorch's <c>clip_grad_norm_</c> formula). The only host reads are the
/// non-finite guard's one boolean per step (<see cref="NonFiniteStepPolicy"/>; none with <see cref="NonFiniteStepPolicy.Ignore"/>)
/// and, on logging steps, the loss, its parts, the gradient norm and the token count.
/// </remarks>
internal sealed class TrainingStep(
    ICausalLM student,
    IDistillationObjective objective,
    ITeacher? teacher,
    TrainingOptions options,
    IReadOnlyList<ParameterGroupSpec> groups,
    MasterWeights? masters,
    optim.Optimizer? optimizer,
    Device device,
    ILogger logger)
{
    private readonly List<Parameter> trainable = [.. groups.SelectMany(g => g.Parameters.Select(p => p.Parameter))];

    /// <summary>Runs the step over micro-batches <c>firstIndex ..</c> of <paramref name="epoch"/>.</summary>
    /// <param name="pipeline">Where the prepared micro-batches come from.</param>
    /// <param name="step">The 0-based index of this optimizer step (messages say <c>step + 1</c>).</param>
    /// <param name="epoch">The epoch of the window.</param>
    /// <param name="firstIndex">The first micro-batch index of the window.</param>
    /// <param name="learningRates">One learning rate per optimizer group.</param>
    /// <param name="tokenCounter">A device int64 scalar the window's scored tokens are added to (no host read).</param>
    /// <param name="readBack">Whether to read the loss, parts, gradient norm and tokens back (logging steps).</param>
    /// <param name="cancellationToken">The run's token (passed to the teacher and the transforms).</param>
    /// <param name="applyUpdate">False stops after normalising and clipping the gradients (tests).</param>
    /// <returns>What the step reports.</returns>
    public StepStats Run(
        BatchPipeline pipeline,
        int step,
        int epoch,
        int firstIndex,
        double[] learningRates,
        Tensor? tokenCounter,
        bool readBack,
        CancellationToken cancellationToken,
        bool applyUpdate = true)
    {
        using var scope = NewDisposeScope();
        foreach (var p in trainable)
        {
            p.grad = null; // PyTorch's zero_grad(set_to_none=True)
        }

        var lossSum = zeros(1, dtype: ScalarType.Float32, device: device);
        var normalizer = zeros(1, dtype: ScalarType.Float32, device: device);
        var scored = zeros(1, dtype: ScalarType.Int64, device: device);
        var parts = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        for (var k = 0; k < options.GradientAccumulationSteps; k++)
        {
            var index = firstIndex + k;
            using var micro = NewDisposeScope();
            using var prepared = Wrap(step, epoch, index, "preparing the batch", () => pipeline.Take(epoch, index, cancellationToken));
            var result = Wrap(step, epoch, index, $"objective '{objective.Name}'", () => Compute(prepared, epoch, index));
            result.LossSum.backward();
            using (no_grad())
            {
                lossSum.add_(result.LossSum.detach().to(ScalarType.Float32).reshape(1), TorchScalars.One);
                normalizer.add_(result.Normalizer.to(ScalarType.Float32).reshape(1), TorchScalars.One);
                scored.add_(result.ScoredTokens.to(ScalarType.Int64).reshape(1), TorchScalars.One);
                foreach (var (name, value) in result.Metrics)
                {
                    var v = value.detach().to(ScalarType.Float32).reshape(1);
                    if (parts.TryGetValue(name, out var acc))
                    {
                        acc.add_(v, TorchScalars.One);
                    }
                    else
                    {
                        parts[name] = v.clone().MoveToOuterDisposeScope();
                    }
                }
            }
        }

        // Normalise by the window's summed normaliser (DSKD); clamp_min(1): an all-masked window gives zero gradients, not NaN.
        var scale = normalizer.clamp_min(TorchScalars.Constant(1.0)).reciprocal().reshape(Array.Empty<long>());
        var targets = masters is null ? trainable : masters.Masters;
        Tensor gradNorm;
        using (no_grad())
        {
            if (masters is null)
            {
                foreach (var p in trainable)
                {
                    p.grad?.mul_(scale);
                }
            }
            else
            {
                masters.LoadGradients(scale);
            }

            gradNorm = ClipGradNorm(targets, options.MaxGradNorm);
        }

        var skipped = false;
        if (options.OnNonFiniteStep != NonFiniteStepPolicy.Ignore)
        {
            // The guard's one host read per optimizer step.
            var finite = lossSum.isfinite().all().logical_and(gradNorm.isfinite()).item<bool>();
            if (!finite)
            {
                var message = NonFiniteMessage(step, epoch, firstIndex, lossSum, normalizer, gradNorm, parts);
                if (options.OnNonFiniteStep == NonFiniteStepPolicy.Stop)
                {
                    throw new NonFiniteLossException(step + 1, objective.Name, message);
                }

                Log.NonFiniteStepSkipped(logger, message);
                foreach (var p in targets.Concat(trainable))
                {
                    p.grad = null;
                }

                skipped = true;
            }
        }

        if (applyUpdate && !skipped)
        {
            var pg = optimizer!.ParamGroups.ToList();
            for (var i = 0; i < pg.Count; i++)
            {
                pg[i].LearningRate = learningRates[i];
            }

            optimizer.step();
            masters?.CopyToModel();
        }

        tokenCounter?.add_(scored.reshape(tokenCounter.shape), TorchScalars.One);
        if (!readBack)
        {
            return new StepStats(double.NaN, new Dictionary<string, double>(), double.NaN, -1, skipped);
        }

        var n = Math.Max(normalizer.item<float>(), 1.0);
        var partValues = parts.ToDictionary(kv => kv.Key, kv => kv.Value.item<float>() / n, StringComparer.Ordinal);
        return new StepStats(lossSum.item<float>() / n, partValues, (double)gradNorm.to(ScalarType.Float32).item<float>(), scored.item<long>(), skipped);
    }

    private ObjectiveResult Compute(PreparedBatch prepared, int epoch, int index)
    {
        var req = objective.Requirements;
        var batch = prepared.Batch;
        if (req.NeedsTeacher)
        {
            CheckTeacherOutput(prepared.Teacher!, epoch, index);
        }

        var studentOut = student.Forward(new CausalLMInput
        {
            InputIds = batch.InputIds,
            AttentionMask = batch.AttentionMask,
            PositionIds = batch.PositionIds,
            ComputeLogits = req.NeedsStudentLogits,
            ReturnHiddenStates = req.NeedsStudentHiddenStates,
        });
        var result = objective.Compute(new ObjectiveContext
        {
            Batch = batch,
            Student = studentOut,
            Teacher = prepared.Teacher,
            StudentModel = student,
            TeacherModel = teacher?.Model,
        });
        if (result.LossSum.numel() != 1 || result.Normalizer.numel() != 1 || result.ScoredTokens.numel() != 1)
        {
            throw new InvalidOperationException($"Objective '{objective.Name}' returned a loss of shape [{string.Join(", ", result.LossSum.shape)}], a normaliser of shape [{string.Join(", ", result.Normalizer.shape)}] and a token count of shape [{string.Join(", ", result.ScoredTokens.shape)}]; each must be a scalar.");
        }

        return result;
    }

    private void CheckTeacherOutput(TeacherOutput output, int epoch, int index)
    {
        var req = objective.Requirements;
        var teacherName = teacher!.GetType().Name;
        if (req.NeedsTeacherLogits && output.Logits is null && !(req.AcceptsSparseTopK && output.TopKLogProbs is not null))
        {
            throw new InvalidOperationException($"Teacher {teacherName} returned no logits for batch {index} of epoch {epoch}, but objective '{objective.Name}' needs them.");
        }

        if (req.NeedsTeacherHiddenStates && output.HiddenStates is null)
        {
            throw new InvalidOperationException($"Teacher {teacherName} returned no hidden states for batch {index} of epoch {epoch}, but objective '{objective.Name}' needs them.");
        }
    }

    /// <summary>libtorch's <c>clip_grad_norm_</c> (L2) without its host read: the total norm stays a device tensor.</summary>
    private Tensor ClipGradNorm(IReadOnlyList<Parameter> parameters, double? maxNorm)
    {
        var grads = parameters.Select(p => p.grad).OfType<Tensor>().ToList();
        if (grads.Count == 0)
        {
            return zeros(Array.Empty<long>(), ScalarType.Float32, device);
        }

        var norms = grads.Select(g => g.norm(2.0f)).ToList();
        var total = norms.Count == 1 ? norms[0] : stack(norms).norm(2.0f);
        if (maxNorm is double max)
        {
            var coefficient = total.Add(1e-6).RDiv(max).clamp_max(TorchScalars.Constant(1.0));
            foreach (var g in grads)
            {
                g.mul_(coefficient);
            }
        }

        return total;
    }

    private string NonFiniteMessage(int step, int epoch, int firstIndex, Tensor lossSum, Tensor normalizer, Tensor gradNorm, Dictionary<string, Tensor> parts)
    {
        var n = Math.Max(normalizer.item<float>(), 1.0);
        var loss = lossSum.item<float>() / n;
        var bad = parts.Where(kv => !float.IsFinite(kv.Value.item<float>())).Select(kv => string.Create(CultureInfo.InvariantCulture, $"{kv.Key}={kv.Value.item<float>() / n}")).ToList();
        var term = bad.Count > 0 ? $"non-finite term(s): {string.Join(", ", bad)}" : double.IsFinite(loss) ? "the loss is finite but the gradient is not" : "no reported term is non-finite (the loss itself is)";
        return string.Create(
            CultureInfo.InvariantCulture,
            $"Step {step + 1} (epoch {epoch}, micro-batches {firstIndex}..{firstIndex + options.GradientAccumulationSteps - 1}): objective '{objective.Name}' gave loss {loss} and gradient norm {(double)gradNorm.to(ScalarType.Float32).item<float>()}; {term}.");
    }

    private static T Wrap<T>(int step, int epoch, int index, string what, Func<T> action)
    {
        try
        {
            return action();
        }
        catch (Exception e) when (e is not OperationCanceledException and not NonFiniteLossException)
        {
            throw new InvalidOperationException($"Step {step + 1} (epoch {epoch}, micro-batch {index}), {what}: {e.Message}", e);
        }
    }
}

/// <summary>What one step reports (loss, parts, norm and tokens are NaN / empty / −1 unless read back).</summary>
internal readonly record struct StepStats(double Loss, IReadOnlyDictionary<string, double> Parts, double GradNorm, long Tokens, bool Skipped);

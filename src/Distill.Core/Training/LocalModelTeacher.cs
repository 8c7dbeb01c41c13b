using static TorchSharp.torch;

namespace Distill.Training;

/// <summary>
/// An <see cref="ITeacher"/> backed by a local <see cref="ICausalLM"/>: frozen (no parameter requires grad), in eval mode,
/// run under <c>no_grad</c>. It reads the teacher's own tokenisation when the batch has one, the student's otherwise.
/// </summary>
/// <remarks>Not thread-safe (one forward at a time). The returned tensors belong to the caller's dispose scope.</remarks>
public sealed class LocalModelTeacher : ITeacher
{
    /// <summary>Wraps <paramref name="model"/>, freezing it and switching it to eval mode.</summary>
    /// <param name="model">The teacher model; it must live on the student's device.</param>
    public LocalModelTeacher(ICausalLM model)
    {
        ArgumentNullException.ThrowIfNull(model);
        Model = model;
        foreach (var p in model.Module.parameters())
        {
            p.requires_grad = false;
        }

        model.Module.eval();
    }

    /// <summary>Gets the wrapped model.</summary>
    public ICausalLM Model { get; }

    /// <inheritdoc />
    /// <remarks>Dense logits and hidden states (with the lm_head through <see cref="Model"/>), the model's vocabulary and hidden size.</remarks>
    public TeacherInfo Info => new()
    {
        Capabilities = TeacherCapabilities.DenseLogits | TeacherCapabilities.HiddenStates,
        VocabularySize = Model.Config.VocabSize,
        HiddenSize = Model.Config.HiddenSize,
    };

    /// <inheritdoc />
    /// <remarks>Computes logits when <see cref="ObjectiveRequirements.NeedsTeacherLogits"/> and hidden states when
    /// <see cref="ObjectiveRequirements.NeedsTeacherHiddenStates"/>; the forward runs in eval mode (no dropout) even if someone
    /// switched the module back to training.</remarks>
    public TeacherOutput Infer(DistillationBatch batch, ObjectiveRequirements requirements)
    {
        ArgumentNullException.ThrowIfNull(batch);
        ArgumentNullException.ThrowIfNull(requirements);
        using var noGrad = no_grad();
        if (Model.Module.training)
        {
            Model.Module.eval();
        }

        var own = batch.HasTeacherTokens;
        var output = Model.Forward(new CausalLMInput
        {
            InputIds = own ? batch.TeacherInputIds! : batch.InputIds,
            AttentionMask = own ? batch.TeacherAttentionMask : batch.AttentionMask,
            PositionIds = own ? batch.TeacherPositionIds : batch.PositionIds,
            ComputeLogits = requirements.NeedsTeacherLogits,
            ReturnHiddenStates = requirements.NeedsTeacherHiddenStates,
        });
        return new TeacherOutput { Logits = output.Logits, HiddenStates = output.HiddenStates };
    }
}

namespace Distill.Losses.DualSpace;

/// <summary>Creates (or checks) the projectors of a dual-space objective for a student/teacher pair.</summary>
internal static class DualSpaceInit
{
    internal static DualSpaceProjectors Create(DualSpaceProjectors? existing, ICausalLM student, ICausalLM teacher, bool withQuery, string objective)
    {
        long ds = student.Config.HiddenSize;
        long dt = teacher.Config.HiddenSize;
        if (existing is not null)
        {
            if (existing.StudentHiddenSize != ds || existing.TeacherHiddenSize != dt || (withQuery && existing.Query is null))
            {
                throw new InvalidOperationException($"Objective '{objective}' already has projectors for d_s = {existing.StudentHiddenSize}, d_t = {existing.TeacherHiddenSize}{(withQuery && existing.Query is null ? " without a query projector" : string.Empty)}; this pair has d_s = {ds}, d_t = {dt}.");
            }

            return existing;
        }

        // PyTorch default init in float32 on the student's device; the trainer casts them with everything else for bf16 runs.
        return new DualSpaceProjectors(ds, dt, withQuery, student.LmHeadWeight.device);
    }
}

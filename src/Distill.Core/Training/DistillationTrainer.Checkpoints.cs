using System.Globalization;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Distill.Training;

/// <summary>The optimizer and the checkpoint side of the trainer: what a checkpoint holds and how a run resumes from one.</summary>
public sealed partial class DistillationTrainer
{
    private optim.Optimizer CreateOptimizer(IReadOnlyList<ParameterGroupSpec> groups, MasterWeights? masters)
    {
        var o = options;
        var paramGroups = new List<AdamW.ParamGroup>();
        var offset = 0;
        foreach (var g in groups)
        {
            IEnumerable<Parameter> ps = masters is null
                ? g.Parameters.Select(p => p.Parameter).ToList()
                : masters.Masters.Skip(offset).Take(g.Parameters.Count).ToList();
            offset += g.Parameters.Count;
            // Every AdamW setting passed explicitly: TorchSharp's ParamGroup constructor defaults beta2 to 0.99, not PyTorch's 0.999.
            paramGroups.Add(new AdamW.ParamGroup(ps, new AdamW.Options
            {
                LearningRate = g.BaseLearningRate,
                beta1 = o.Beta1,
                beta2 = o.Beta2,
                eps = o.Epsilon,
                weight_decay = g.WeightDecay,
                amsgrad = false,
                maximize = false,
            }));
        }

        return torch.optim.AdamW(paramGroups, lr: o.LearningRate, beta1: o.Beta1, beta2: o.Beta2, eps: o.Epsilon, weight_decay: o.WeightDecay);
    }

    private string SaveCheckpoint(
        CheckpointStore store,
        Position next,
        long tokens,
        optim.Optimizer optimizer,
        MasterWeights? masters,
        IReadOnlyList<ParameterGroupSpec> groups,
        LearningRateSchedule schedule,
        double[] learningRates,
        IReadOnlyDictionary<string, double>? evalMetrics,
        int totalSteps,
        int stepsPerEpoch,
        int batchesPerEpoch)
    {
        var o = options;
        return store.Save(next.Step, dir =>
        {
            var studentDir = Path.Combine(dir, CheckpointStore.StudentFolder);
            Directory.CreateDirectory(studentDir);
            checkpointWriter.Save(student, studentDir);
            ((OptimizerHelper)optimizer).save_state_dict(Path.Combine(dir, CheckpointStore.OptimizerFile));
            if (objective.Module is { } om)
            {
                NamedTensorFile.Write(Path.Combine(dir, CheckpointStore.ObjectiveFile), om.state_dict());
            }

            masters?.Save(Path.Combine(dir, CheckpointStore.MasterWeightsFile));
            using (var rng = torch.get_rng_state())
            {
                NamedTensorFile.Write(Path.Combine(dir, CheckpointStore.RngFile), [new("torch_cpu", rng)]);
            }

            double? bestValue = o.BestMetric is { } m && evalMetrics is not null && evalMetrics.TryGetValue(m, out var v) ? v : null;
            var state = new TrainerState
            {
                GlobalStep = next.Step,
                Epoch = next.Epoch,
                StepInEpoch = next.StepInEpoch,
                TotalSteps = totalSteps,
                StepsPerEpoch = stepsPerEpoch,
                BatchesPerEpoch = batchesPerEpoch,
                GradientAccumulationSteps = o.GradientAccumulationSteps,
                Tokens = tokens,
                Objective = objective.Name,
                Precision = o.Precision,
                Schedule = schedule.Kind,
                WarmupSteps = schedule.WarmupSteps,
                MinLearningRate = schedule.MinLearningRate,
                Groups = [.. groups.Select((g, i) => new TrainerState.GroupState(g.Name, g.BaseLearningRate, learningRates[i], g.Parameters.Count))],
                Metrics = evalMetrics,
                BestMetric = bestValue is null ? null : o.BestMetric,
                BestMetricValue = bestValue,
                HasObjectiveParameters = objective.Module is not null,
                HasMasterWeights = masters is not null,
                CreatedUtc = DateTime.UtcNow.ToString("O", CultureInfo.InvariantCulture),
            };
            CheckpointStore.WriteJson(Path.Combine(dir, CheckpointStore.OptionsFile), o);
            CheckpointStore.WriteJson(Path.Combine(dir, CheckpointStore.StateFile), state); // last: its presence marks a complete folder
        });
    }

    private (Position Position, long Tokens) LoadCheckpoint(
        string path,
        optim.Optimizer optimizer,
        MasterWeights? masters,
        IReadOnlyList<ParameterGroupSpec> groups,
        int totalSteps,
        int stepsPerEpoch,
        int batchesPerEpoch)
    {
        var o = options;
        var state = CheckpointStore.ReadState(path);
        var file = Path.Combine(path, CheckpointStore.StateFile);
        void Expect<T>(string field, T saved, T now)
        {
            if (!EqualityComparer<T>.Default.Equals(saved, now))
            {
                throw new ArgumentException($"Cannot resume from '{file}': {field} was {saved} in the checkpoint but is {now} now; an exact resume needs the same setup.");
            }
        }

        Expect("format", state.Format, TrainerState.CurrentFormat);
        Expect("total_steps", state.TotalSteps, totalSteps);
        Expect("steps_per_epoch", state.StepsPerEpoch, stepsPerEpoch);
        Expect("batches_per_epoch", state.BatchesPerEpoch, batchesPerEpoch);
        Expect("gradient_accumulation_steps", state.GradientAccumulationSteps, o.GradientAccumulationSteps);
        Expect("objective", state.Objective, objective.Name);
        Expect("precision", state.Precision, o.Precision);
        Expect("optimizer groups", string.Join(",", state.Groups.Select(g => $"{g.Name}:{g.Parameters}")), string.Join(",", groups.Select(g => $"{g.Name}:{g.Parameters.Count}")));
        Expect("objective parameters", state.HasObjectiveParameters, objective.Module is not null);

        checkpointWriter.Load(student, Path.Combine(path, CheckpointStore.StudentFolder));
        if (objective.Module is { } om)
        {
            NamedTensorFile.LoadInto(Path.Combine(path, CheckpointStore.ObjectiveFile), om.state_dict());
        }

        if (masters is not null)
        {
            masters.Load(Path.Combine(path, CheckpointStore.MasterWeightsFile));
        }

        ((OptimizerHelper)optimizer).load_state_dict(Path.Combine(path, CheckpointStore.OptimizerFile));
        var rng = NamedTensorFile.Read(Path.Combine(path, CheckpointStore.RngFile));
        try
        {
            if (!rng.TryGetValue("torch_cpu", out var cpuState))
            {
                throw new InvalidDataException($"'{Path.Combine(path, CheckpointStore.RngFile)}' has no 'torch_cpu' generator state.");
            }

            torch.set_rng_state(cpuState);
        }
        finally
        {
            foreach (var t in rng.Values)
            {
                t.Dispose();
            }
        }

        return (new Position(state.GlobalStep, state.Epoch, state.StepInEpoch), state.Tokens);
    }

    /// <summary>Loads the student (and objective) weights of <paramref name="path"/> into the live models (<see cref="TrainingOptions.LoadBestModelAtEnd"/>).</summary>
    private void LoadModelWeights(string path)
    {
        checkpointWriter.Load(student, Path.Combine(path, CheckpointStore.StudentFolder));
        if (objective.Module is { } om)
        {
            NamedTensorFile.LoadInto(Path.Combine(path, CheckpointStore.ObjectiveFile), om.state_dict());
        }
    }
}

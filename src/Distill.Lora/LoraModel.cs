using Distill.Models;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Distill.Lora;

/// <summary>
/// LoRA adapters injected into a model (PEFT's <c>LoraModel</c>): which layers carry them, which parameters train,
/// merge/unmerge, and the PEFT on-disk form (<see cref="SaveAdapter"/>, <see cref="LoadAdapter(nn.Module, string, bool, ILogger?)"/>).
/// </summary>
/// <remarks>
/// <para>The model is changed in place: each targeted <see cref="Projection"/> gets <c>lora_A</c>, <c>lora_B</c> and
/// <c>lora_dropout</c> children and its adapter slot set, so the model's forward includes the adapters and its state
/// dict holds <c>&lt;path&gt;.lora_A.weight</c>. The base model is frozen; adapters (and <see cref="LoraConfig.ModulesToSave"/>
/// and biases per <see cref="LoraConfig.Bias"/>) train unless the adapter was loaded frozen.</para>
/// <para>Adapter weights are float32 when the base is float16/bfloat16 (PEFT's <c>autocast_adapter_dtype</c>), else the base dtype.</para>
/// <para>Not thread-safe; use it from the thread that trains the model.</para>
/// </remarks>
public sealed partial class LoraModel
{
    /// <summary>The prefix of every key of a PEFT adapter file (<c>PeftModel.base_model</c> is a <c>LoraModel</c> whose <c>model</c> is the base).</summary>
    public const string PeftKeyPrefix = "base_model.model.";

    /// <summary>The file name PEFT uses for adapter weights.</summary>
    public const string WeightsFileName = "adapter_model.safetensors";

    private static readonly Dictionary<string, string[]> DefaultTargetModules = new(StringComparer.OrdinalIgnoreCase)
    {
        // PEFT's TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING for the families Distill implements.
        ["gpt2"] = ["c_attn"],
        ["llama"] = ["q_proj", "v_proj"],
        ["mistral"] = ["q_proj", "v_proj"],
        ["qwen2"] = ["q_proj", "v_proj"],
    };

    private readonly Dictionary<string, LoraLayer> layers;
    private readonly Dictionary<string, nn.Module> modulesToSave;
    private readonly Dictionary<string, (Tensor Weight, Tensor? Bias)> originals = new(StringComparer.Ordinal);
    private readonly ILogger logger;
    private bool enabled = true;
    private bool unloaded;

    private LoraModel(nn.Module model, LoraConfig config, Dictionary<string, LoraLayer> layers, Dictionary<string, nn.Module> modulesToSave, ILogger logger)
    {
        Model = model;
        Config = config;
        this.layers = layers;
        this.modulesToSave = modulesToSave;
        this.logger = logger;
    }

    /// <summary>Gets the adapted model (changed in place).</summary>
    public nn.Module Model { get; }

    /// <summary>Gets the effective configuration: <see cref="LoraConfig.AllLinear"/> expanded to module names, fan_in_fan_out as applied. This is what <see cref="SaveAdapter"/> writes.</summary>
    public LoraConfig Config { get; }

    /// <summary>Gets the adapter layers by module path, in model order.</summary>
    public IReadOnlyDictionary<string, LoraLayer> Layers => layers;

    /// <summary>Gets the module paths of <see cref="LoraConfig.ModulesToSave"/> found in the model.</summary>
    public IReadOnlyCollection<string> ModulesToSavePaths => modulesToSave.Keys;

    /// <summary>Gets a value indicating whether the adapters are merged into the base weights.</summary>
    public bool IsMerged => layers.Values.Any(l => l.IsMerged);

    /// <summary>Gets or sets a value indicating whether the (unmerged) adapters take part in the forward (PEFT's <c>disable_adapter()</c> when false).</summary>
    /// <exception cref="InvalidOperationException">Set while merged (unmerge first).</exception>
    public bool AdaptersEnabled
    {
        get => enabled;
        set
        {
            ThrowIfUnloaded();
            if (value == enabled)
            {
                return;
            }

            if (IsMerged)
            {
                throw new InvalidOperationException("LoRA: cannot enable or disable adapters while they are merged; call Unmerge() first.");
            }

            foreach (var l in layers.Values)
            {
                l.Target.SetAdapter(value ? l : null);
            }

            enabled = value;
        }
    }

    /// <summary>Injects new adapters into <paramref name="model"/> as PEFT's <c>get_peft_model</c> does, initialised per <see cref="LoraConfig.InitLoraWeights"/>.</summary>
    /// <param name="model">Any module whose dense layers are <see cref="Projection"/>s with transformers-style names.</param>
    /// <param name="config">The configuration (not modified; see <see cref="Config"/> for the effective one).</param>
    /// <param name="logger">Optional logger.</param>
    /// <returns>The adapters; only they (plus modules_to_save and biases per <see cref="LoraConfig.Bias"/>) require gradients.</returns>
    /// <exception cref="ArgumentException">The configuration is invalid.</exception>
    /// <exception cref="InvalidOperationException">No module matches the targets, a modules_to_save name matches nothing, or the model already has adapters.</exception>
    /// <exception cref="NotSupportedException">A matched module is not a <see cref="Projection"/>, or the configuration uses an unsupported PEFT feature.</exception>
    public static LoraModel Inject(nn.Module model, LoraConfig config, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentNullException.ThrowIfNull(config);
        if (config.Extra.TryGetValue("init_lora_weights", out var init))
        {
            throw new NotSupportedException($"LoRA: init_lora_weights = {init?.ToJsonString()} is not supported for new adapters (use true, false or \"gaussian\").");
        }

        return Create(model, config, initialize: true, trainable: true, "LoRA configuration", logger);
    }

    /// <summary>Injects new adapters into a Distill causal LM; without target modules, uses PEFT's default for its model type.</summary>
    /// <param name="model">The model.</param>
    /// <param name="config">The configuration.</param>
    /// <param name="logger">Optional logger.</param>
    /// <returns>The adapters.</returns>
    public static LoraModel Inject(ICausalLM model, LoraConfig config, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return Inject(model.Module, WithDefaultTargets(config, model.Config.ModelType), logger);
    }

    /// <summary>Injects new adapters into a Distill model (see <see cref="Inject(ICausalLM, LoraConfig, ILogger?)"/>).</summary>
    /// <param name="model">The model.</param>
    /// <param name="config">The configuration.</param>
    /// <param name="logger">Optional logger.</param>
    /// <returns>The adapters.</returns>
    public static LoraModel Inject(CausalLM model, LoraConfig config, ILogger? logger = null) => Inject((ICausalLM)model, config, logger);

    /// <summary>
    /// Loads a PEFT adapter folder (<c>adapter_config.json</c> + <c>adapter_model.safetensors</c>) onto <paramref name="model"/>,
    /// as <c>PeftModel.from_pretrained</c> does; with <paramref name="trainable"/> false (a LoRA-tuned teacher, as in DSKD)
    /// every parameter of the model, adapters included, is frozen.
    /// </summary>
    /// <param name="model">The base model.</param>
    /// <param name="adapterDirectory">The adapter folder.</param>
    /// <param name="trainable">Whether the adapter keeps training (true) or is frozen with the model (false, the default).</param>
    /// <param name="logger">Optional logger.</param>
    /// <returns>The loaded adapters. Call <see cref="MergeAndUnload"/> to fold them into the base weights for faster inference.</returns>
    /// <exception cref="FileNotFoundException">The config or weights file is missing.</exception>
    /// <exception cref="InvalidDataException">A key is missing or unexpected, or a tensor has the wrong shape (rank mismatch); the message names the file and key.</exception>
    /// <exception cref="InvalidOperationException">The configured target modules are absent from the model.</exception>
    public static LoraModel LoadAdapter(nn.Module model, string adapterDirectory, bool trainable = false, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        ArgumentException.ThrowIfNullOrEmpty(adapterDirectory);
        var configPath = Path.Combine(adapterDirectory, LoraConfig.FileName);
        var config = LoraConfig.Load(configPath);
        var weightsPath = Path.Combine(adapterDirectory, WeightsFileName);
        if (!File.Exists(weightsPath))
        {
            var bin = Path.Combine(adapterDirectory, "adapter_model.bin");
            throw new FileNotFoundException(
                File.Exists(bin)
                    ? $"LoRA adapter '{adapterDirectory}' has only the pickle file 'adapter_model.bin'; convert it to '{WeightsFileName}' (Distill reads safetensors only)."
                    : $"LoRA adapter weights '{weightsPath}' do not exist.",
                weightsPath);
        }

        var requiresGrad = model.parameters().Select(p => (p, p.requires_grad)).ToList();
        var lora = Create(model, config, initialize: false, trainable, configPath, logger);
        var tensors = IO.SafeTensors.Load(weightsPath);
        try
        {
            lora.LoadAdapterStateDict(tensors, weightsPath);
        }
        catch
        {
            // Leave the model as it was: no adapter modules, the caller's requires_grad flags.
            lora.Unload();
            foreach (var (p, flag) in requiresGrad)
            {
                p.requires_grad = flag;
            }

            throw;
        }
        finally
        {
            foreach (var t in tensors.Values)
            {
                t.Dispose();
            }
        }

        if (!trainable)
        {
            model.eval(); // as PeftModel.from_pretrained(is_trainable=False): a frozen adapter runs without dropout
        }

        Log.Loaded(lora.logger, adapterDirectory, tensors.Count, lora.layers.Count, trainable);
        return lora;
    }

    /// <summary>Loads a PEFT adapter folder onto a Distill causal LM (see <see cref="LoadAdapter(nn.Module, string, bool, ILogger?)"/>).</summary>
    /// <param name="model">The base model.</param>
    /// <param name="adapterDirectory">The adapter folder.</param>
    /// <param name="trainable">Whether the adapter keeps training.</param>
    /// <param name="logger">Optional logger.</param>
    /// <returns>The loaded adapters.</returns>
    public static LoraModel LoadAdapter(ICausalLM model, string adapterDirectory, bool trainable = false, ILogger? logger = null)
    {
        ArgumentNullException.ThrowIfNull(model);
        return LoadAdapter(model.Module, adapterDirectory, trainable, logger);
    }

    /// <summary>Loads a PEFT adapter folder onto a Distill model (see <see cref="LoadAdapter(nn.Module, string, bool, ILogger?)"/>).</summary>
    /// <param name="model">The base model.</param>
    /// <param name="adapterDirectory">The adapter folder.</param>
    /// <param name="trainable">Whether the adapter keeps training.</param>
    /// <param name="logger">Optional logger.</param>
    /// <returns>The loaded adapters.</returns>
    public static LoraModel LoadAdapter(CausalLM model, string adapterDirectory, bool trainable = false, ILogger? logger = null) =>
        LoadAdapter((ICausalLM)model, adapterDirectory, trainable, logger);

    /// <summary>Gets the parameters that require gradients (for the optimizer), with their model names.</summary>
    /// <returns>Name and parameter, in model order.</returns>
    /// <remarks>A parameter reachable under two names (a module registered twice) is listed once, under its first name, as PyTorch does.</remarks>
    public IEnumerable<(string Name, Parameter Parameter)> TrainableParameters() =>
        UniqueNamedParameters(Model).Where(p => p.Parameter.requires_grad);

    /// <summary>Counts the parameters that require gradients.</summary>
    /// <returns>Σ numel of trainable parameters (PEFT's <c>get_nb_trainable_parameters()[0]</c>).</returns>
    public long CountTrainableParameters() => TrainableParameters().Sum(p => p.Parameter.numel());

    /// <summary>Counts all parameters of the model, adapters included.</summary>
    /// <returns>Σ numel of all parameters.</returns>
    public long CountAllParameters() => UniqueNamedParameters(Model).Sum(p => p.Parameter.numel());

    /// <summary>Freezes every parameter of the model, adapters included (a teacher).</summary>
    public void Freeze()
    {
        foreach (var p in Model.parameters())
        {
            p.requires_grad = false;
        }
    }

    /// <summary>
    /// Merges every adapter into its base weight: <c>W += scaling·B·A</c> (transposed for Conv1D), computed in float32; with
    /// a lora_B bias also <c>b += scaling·b_B</c>. The adapters then leave the forward.
    /// </summary>
    /// <param name="keepOriginalWeights">
    /// True (the default): keep a copy of each original weight so that <see cref="Unmerge"/> restores it bit for bit (costs one
    /// copy of the adapted weights). False: <see cref="Unmerge"/> subtracts the delta as PEFT does, exact only up to rounding.
    /// </param>
    public void Merge(bool keepOriginalWeights = true)
    {
        ThrowIfUnloaded();
        using var noGrad = torch.no_grad();
        var count = 0;
        ThrowIfTiedTarget("merge");
        foreach (var l in layers.Values.Where(l => !l.IsMerged))
        {
            using var scope = torch.NewDisposeScope();
            var weight = l.Target.Weight;
            var bias = l.Target.Bias;
            var deltaBias = l.DeltaBias();
            if (deltaBias is not null && bias is null)
            {
                throw new InvalidOperationException($"LoRA: cannot merge '{l.Path}': lora_B has a bias (lora_bias) but the base layer has none.");
            }

            var delta = l.DeltaWeight();
            if (!delta.isfinite().all().item<bool>())
            {
                throw new InvalidOperationException($"LoRA: the merged delta of '{l.Path}' is not finite; the adapter is broken.");
            }

            if (keepOriginalWeights)
            {
                originals[l.Path] = (weight.detach().clone().DetachFromDisposeScope(), deltaBias is null ? null : bias!.detach().clone().DetachFromDisposeScope());
            }

            weight.add_(delta, TorchScalars.One);
            if (deltaBias is not null)
            {
                bias!.add_(deltaBias, TorchScalars.One);
            }

            l.Target.SetAdapter(null);
            l.IsMerged = true;
            count++;
        }

        Log.Merged(logger, count, keepOriginalWeights);
    }

    /// <summary>Undoes <see cref="Merge"/>: restores the kept original weights (bit-exact) or subtracts the delta, and puts the adapters back in the forward.</summary>
    public void Unmerge()
    {
        ThrowIfUnloaded();
        using var noGrad = torch.no_grad();
        var count = 0;
        foreach (var l in layers.Values.Where(l => l.IsMerged))
        {
            using var scope = torch.NewDisposeScope();
            if (originals.Remove(l.Path, out var saved))
            {
                l.Target.Weight.copy_(saved.Weight);
                saved.Weight.Dispose();
                if (saved.Bias is not null)
                {
                    l.Target.Bias!.copy_(saved.Bias);
                    saved.Bias.Dispose();
                }
            }
            else
            {
                l.Target.Weight.sub_(l.DeltaWeight());
                if (l.DeltaBias() is Tensor db)
                {
                    l.Target.Bias!.sub_(db);
                }
            }

            l.IsMerged = false;
            l.Target.SetAdapter(enabled ? l : null);
            count++;
        }

        Log.Unmerged(logger, count);
    }

    /// <summary>Merges the adapters into the base weights and removes them (PEFT's <c>merge_and_unload</c>); the model is then a plain model again.</summary>
    /// <returns>The model.</returns>
    public nn.Module MergeAndUnload()
    {
        ThrowIfUnloaded();
        Merge(keepOriginalWeights: false);
        Remove();
        return Model;
    }

    /// <summary>Removes the adapters without merging (PEFT's <c>unload</c>); merged adapters are unmerged first. Trained modules_to_save and biases keep their values.</summary>
    /// <returns>The model.</returns>
    public nn.Module Unload()
    {
        ThrowIfUnloaded();
        Unmerge();
        Remove();
        return Model;
    }

    private static LoraConfig WithDefaultTargets(LoraConfig config, string modelType)
    {
        ArgumentNullException.ThrowIfNull(config);
        if (config.TargetModules is not null || config.TargetModulesPattern is not null)
        {
            return config;
        }

        if (!DefaultTargetModules.TryGetValue(modelType, out var defaults))
        {
            throw new ArgumentException($"LoRA: no target_modules given and PEFT has no default for model type '{modelType}'; set {nameof(LoraConfig.TargetModules)}.", nameof(config));
        }

        var c = config.Clone();
        c.TargetModules = [.. defaults];
        return c;
    }

    /// <summary>The most adapter parameters accepted, as a multiple of the base model's parameter count (plus 2^20).</summary>
    private const double MaxAdapterToBaseRatio = 16;

    private static LoraModel Create(nn.Module model, LoraConfig requested, bool initialize, bool trainable, string source, ILogger? logger)
    {
        logger ??= NullLogger.Instance;
        LoraConfigValidator.ThrowIfInvalid(requested, source);
        requested.ThrowIfUnsupported(source);
        if (requested.TargetModules is null && requested.TargetModulesPattern is null)
        {
            throw new ArgumentException($"{source}: no target_modules given; set {nameof(LoraConfig.TargetModules)} or {nameof(LoraConfig.TargetModulesPattern)}.", nameof(requested));
        }

        var named = UniqueNamedModules(model);
        foreach (var (name, module) in named)
        {
            if (module is Projection { Adapter: not null })
            {
                throw new InvalidOperationException($"LoRA: module '{name}' already has an adapter; unload it before injecting another.");
            }
        }

        var config = requested.Clone();
        if (string.Equals(config.TargetModulesPattern, LoraConfig.AllLinear, StringComparison.OrdinalIgnoreCase))
        {
            // PEFT: every Linear/Conv1D except the output embeddings (lm_head); the config then lists the module names.
            config.TargetModulesPattern = null;
            config.TargetModules = [.. named.Where(n => n.module is Projection && !IsOutputLayer(n.name)).Select(n => n.name)];
        }

        if (config.TargetModules is { Count: >= 20 } many)
        {
            // PEFT condenses long lists to the shortest distinguishing suffixes before matching (and saving).
            var suffixes = many.Select(t => "." + t).ToArray();
            var others = named.Select(n => n.name).Where(n => !many.Contains(n) && !suffixes.Any(s => n.EndsWith(s, StringComparison.Ordinal)));
            var minimal = TargetModuleMatcher.MinimalTargetModules([.. many], others);
            if (minimal.Count < many.Count)
            {
                config.TargetModules = [.. minimal];
            }
        }

        // Which modules are targets, and their ranks, are decided (and the adapter size checked against the base model's)
        // before anything is allocated: a corrupt r such as 2^24 must not allocate gigabytes first.
        var targetNames = new HashSet<string>(StringComparer.Ordinal);
        try
        {
            double adapterParameters = 0;
            string? largest = null;
            foreach (var (name, module) in named)
            {
                if (!TargetModuleMatcher.IsTarget(config, name))
                {
                    continue;
                }

                targetNames.Add(name);
                if (module is Projection p)
                {
                    var (rank, _) = TargetModuleMatcher.RankAndAlpha(config, name);
                    adapterParameters += (double)rank * (p.InFeatures + p.OutFeatures);
                    largest ??= $"'{name}' (r = {rank}, in {p.InFeatures}, out {p.OutFeatures})";
                }
            }

            var baseParameters = model.parameters().Sum(x => (double)x.NumberOfElements);
            var limit = (MaxAdapterToBaseRatio * baseParameters) + (1 << 20);
            if (adapterParameters > limit)
            {
                throw new InvalidDataException(
                    $"{source}: the adapters would hold {adapterParameters:E2} parameters, more than {MaxAdapterToBaseRatio}× the base model's {baseParameters:E2} (first target {largest}); r or rank_pattern is implausible for these layer shapes.");
            }
        }
        catch (ArgumentException a) when (a.InnerException is System.Text.RegularExpressions.RegexMatchTimeoutException e)
        {
            throw new InvalidDataException(
                $"{source}: the module pattern '{IO.InputFile.Bound(e.Pattern)}' exceeded its match timeout of {e.MatchTimeout.TotalSeconds:0.#} s on module name '{IO.InputFile.Bound(e.Input)}' (catastrophic backtracking); fix the pattern.",
                e);
        }
        catch (ArgumentException a) when (a.InnerException is System.Text.RegularExpressions.RegexParseException)
        {
            throw new InvalidDataException($"{source}: {a.Message}", a);
        }

        var layers = new Dictionary<string, LoraLayer>(StringComparer.Ordinal);
        bool? fanInFanOut = null;
        foreach (var (name, module) in named)
        {
            if (!targetNames.Contains(name))
            {
                continue;
            }

            if (module is not Projection projection)
            {
                throw new NotSupportedException(
                    $"{source}: target module '{name}' is a {module.GetType().Name}; LoRA supports only dense layers ({nameof(Projection)}: linear or GPT-2 Conv1D). Narrow target_modules.");
            }

            if (config.FanInFanOut != projection.WeightIsInputMajor)
            {
                Log.FanInFanOutCorrected(logger, config.FanInFanOut, name, projection.WeightIsInputMajor ? "[in, out] (Conv1D)" : "[out, in] (linear)", projection.WeightIsInputMajor);
            }

            fanInFanOut = projection.WeightIsInputMajor;
            var (r, alpha) = TargetModuleMatcher.RankAndAlpha(config, name);
            var baseDtype = projection.Weight.dtype;
            var dtype = baseDtype is ScalarType.Float16 or ScalarType.BFloat16 ? ScalarType.Float32 : baseDtype;
            var layer = new LoraLayer(name, projection, r, alpha, config.ScalingFor(r, alpha), config.LoraDropout, config.LoraBias, dtype);
            if (initialize)
            {
                layer.Initialize(config.InitLoraWeights);
            }

            layers.Add(name, layer);
        }

        if (layers.Count == 0)
        {
            var available = named.Where(n => n.module is Projection).Select(n => n.name).Take(8).ToList();
            var targets = config.TargetModulesPattern ?? $"[{string.Join(", ", config.TargetModules ?? [])}]";
            throw new InvalidOperationException(
                $"{source}: target modules {targets} not found in the base model"
                + (config.LayersToTransform is { Count: > 0 } lt ? $" (layers_to_transform [{string.Join(", ", lt)}])" : string.Empty)
                + $". Dense layers of the model include: {(available.Count == 0 ? "(none)" : string.Join(", ", available))}.");
        }

        if (fanInFanOut is bool f)
        {
            config.FanInFanOut = f;
        }

        var saved = new Dictionary<string, nn.Module>(StringComparer.Ordinal);
        foreach (var (name, module) in named)
        {
            if (TargetModuleMatcher.IsModuleToSave(config, name) && !saved.Keys.Any(p => name.StartsWith(p + ".", StringComparison.Ordinal)))
            {
                saved.Add(name, module);
            }
        }

        foreach (var (name, module) in saved)
        {
            if (!module.parameters().Any())
            {
                throw new InvalidOperationException(
                    $"{source}: modules_to_save module '{name}' has no parameters of its own (a tied lm_head reads the embedding's weight); name the embedding module instead.");
            }
        }

        var missing = (config.ModulesToSave ?? []).Where(m => !saved.Keys.Any(k => k.EndsWith(m, StringComparison.Ordinal))).ToList();
        if (missing.Count > 0)
        {
            throw new InvalidOperationException($"{source}: modules_to_save [{string.Join(", ", missing)}] not found in the base model.");
        }

        foreach (var l in layers.Values)
        {
            l.Attach();
        }

        var lora = new LoraModel(model, config, layers, saved, logger);
        lora.SetTrainable(trainable);
        if (initialize)
        {
            Log.Injected(logger, layers.Count, config.R, config.LoraAlpha, config.ScalingFor(config.R, config.LoraAlpha), lora.CountTrainableParameters(), lora.CountAllParameters());
        }

        return lora;
    }

    /// <summary>The output layer that "all-linear" leaves out: PEFT excludes <c>get_output_embeddings()</c>, which is <c>lm_head</c> in every Distill family.</summary>
    private static bool IsOutputLayer(string name) => name == "lm_head" || name.EndsWith(".lm_head", StringComparison.Ordinal);

    private void SetTrainable(bool trainable)
    {
        Freeze();
        if (!trainable)
        {
            return;
        }

        foreach (var l in layers.Values)
        {
            foreach (var (_, p) in l.AdapterParameters())
            {
                p.requires_grad = true;
            }
        }

        foreach (var m in modulesToSave.Values)
        {
            foreach (var p in m.parameters())
            {
                p.requires_grad = true;
            }
        }

        foreach (var (_, p) in BiasParameters())
        {
            p.requires_grad = true;
        }
    }

    /// <summary>The base biases trained and saved per <see cref="LoraConfig.Bias"/>, by model parameter name.</summary>
    private IEnumerable<(string Name, Parameter Parameter)> BiasParameters() => Config.Bias switch
    {
        LoraBiasMode.All => UniqueNamedParameters(Model).Where(p => (p.Name == "bias" || p.Name.EndsWith(".bias", StringComparison.Ordinal)) && !IsAdapterParameter(p.Name)),
        LoraBiasMode.LoraOnly => layers.Values.Where(l => l.Target.Bias is not null).Select(l => ($"{l.Path}.bias", l.Target.Bias!)),
        _ => [],
    };

    private static bool IsAdapterParameter(string name) =>
        name.Contains($".{LoraLayer.AName}.", StringComparison.Ordinal) || name.Contains($".{LoraLayer.BName}.", StringComparison.Ordinal)
        || name.StartsWith($"{LoraLayer.AName}.", StringComparison.Ordinal) || name.StartsWith($"{LoraLayer.BName}.", StringComparison.Ordinal);

    /// <summary>named_modules() without repeats: a module reachable under two names keeps its first one (PyTorch's remove_duplicate).</summary>
    private static List<(string name, nn.Module module)> UniqueNamedModules(nn.Module model)
    {
        var seen = new HashSet<nn.Module>(ReferenceEqualityComparer.Instance);
        return [.. model.named_modules().Where(m => seen.Add(m.module))];
    }

    /// <summary>named_parameters() without repeats (by identity), first name kept.</summary>
    private static IEnumerable<(string Name, Parameter Parameter)> UniqueNamedParameters(nn.Module model)
    {
        var seen = new HashSet<IntPtr>();
        foreach (var (name, p) in model.named_parameters())
        {
            if (seen.Add(p.Handle))
            {
                yield return (name, p);
            }
        }
    }

    /// <summary>A tied lm_head shares its weight with the input embedding: merging into it would change the embedding too.</summary>
    private void ThrowIfTiedTarget(string operation)
    {
        if (layers.Values.FirstOrDefault(l => l.Target is LinearProjection { IsTied: true }) is { } tied)
        {
            throw new InvalidOperationException(
                $"LoRA: cannot {operation} the adapter of '{tied.Path}': its weight is tied to the input embedding, which the merge would change as well. Keep the adapter unmerged.");
        }
    }

    private void Remove()
    {
        foreach (var l in layers.Values)
        {
            l.Detach();
        }

        foreach (var (w, b) in originals.Values)
        {
            w.Dispose();
            b?.Dispose();
        }

        originals.Clear();
        unloaded = true;
    }

    private void ThrowIfUnloaded()
    {
        if (unloaded)
        {
            throw new InvalidOperationException("LoRA: the adapters were unloaded from the model; inject or load them again.");
        }
    }
}

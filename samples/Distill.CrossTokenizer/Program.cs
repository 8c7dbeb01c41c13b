// Cross-tokenizer distillation on the bundled data: a GPT-2 teacher on the bundled trained-BPE tokenizer, a smaller GPT-2
// student on the bundled byte-level tokenizer (two genuinely different vocabularies, 512 vs 260 tokens), distilled with
// ULD (original and DSKD's), MinED and DSKD-CMA, next to an SFT baseline. Prints before/after metrics per method.
//
// Usage: dotnet run -c Release -- [teacherSteps] [studentSteps] [evalExamples]
using System.Diagnostics;
using System.Globalization;
using Distill;
using Distill.Data;
using Distill.Data.Alignment;
using Distill.Eval.Evaluation;
using Distill.Eval.Metrics;
using Distill.Generation;
using Distill.Losses.CrossTokenizer;
using Distill.Models;
using Distill.Runtime;
using Distill.Training;
using Microsoft.Extensions.DependencyInjection;
using static TorchSharp.torch;

var teacherSteps = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 600;
var studentSteps = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 300;
var evalExamples = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 100;
const int Seed = 42, MaxLength = 128;

DistillRuntime.EnsureNativeRuntime();
manual_seed(Seed);
using var services = new ServiceCollection().AddDistill(o => o.Seed = Seed).AddDistillLosses().AddDistillCrossTokenizer().Services.BuildServiceProvider();
var objectives = services.GetRequiredService<IObjectiveFactory>();

// 1. Two tokenizers, one text: the teacher and the student tokenise every example themselves.
var studentTokenizer = BundledData.TokenizerA();   // byte-level
var teacherTokenizer = BundledData.TokenizerB();   // trained BPE
var template = InstructionTemplate.Compact;
var train = BundledData.Load(BundledSplit.Train).Select(template.Apply).ToList();
var test = BundledData.Load(BundledSplit.Test).Take(evalExamples).Select(template.Apply).ToList();
var teacherTrain = TokenizedDataset.Create(train, teacherTokenizer, null, MaxLength, MaxLength / 2);
var crossTrain = TokenizedDataset.Create(train, studentTokenizer, teacherTokenizer, MaxLength, MaxLength / 2);
var studentTest = TokenizedDataset.Create(test, studentTokenizer, null, MaxLength, MaxLength / 2);
var teacherTest = TokenizedDataset.Create(test, teacherTokenizer, null, MaxLength, MaxLength / 2);
Console.WriteLine($"vocabularies: student {studentTokenizer.VocabSize}, teacher {teacherTokenizer.VocabSize}; {train.Count} training examples");

// 2. The teacher: trained from scratch with SFT on its own tokenisation.
var teacher = AutoCausalLM.FromConfig(Gpt2(teacherTokenizer, layers: 4, hidden: 128), Seed);
var clock = Stopwatch.StartNew();
Train(teacher, objectives.Create("sft"), null, Source(teacherTrain), teacherSteps, "teacher");
Console.WriteLine($"teacher trained in {clock.Elapsed.TotalSeconds:F0} s: {Format(Score(teacher, teacherTest, teacherTokenizer))}");

// 3. The student before distillation, then one fresh student (same seed) per method.
var before = Score(AutoCausalLM.FromConfig(Gpt2(studentTokenizer, layers: 2, hidden: 64), Seed + 1), studentTest, studentTokenizer);
Console.WriteLine($"student before: {Format(before)}");
var map = VocabularyMap.Build(studentTokenizer, teacherTokenizer);
Console.WriteLine($"vocabulary map: {map.MappedTeacherCount}/{map.TeacherVocabSize} teacher ids mapped");
var rows = new List<(string Method, (double RougeL, double Nll) Score, double Seconds)>();
foreach (var method in new[] { "sft", "uld", "uld_dskd", "min_ed", "dskd_cma" })
{
    manual_seed(Seed);
    var student = AutoCausalLM.FromConfig(Gpt2(studentTokenizer, layers: 2, hidden: 64), Seed + 1);
    var objective = method == "min_ed" ? new MinEdObjective(null, map, studentTokenizer, teacherTokenizer) : objectives.Create(method);
    if (objective is IModelAwareObjective aware)
    {
        aware.Initialize(student, teacher);   // DSKD-CMA's projectors are sized from both hidden sizes
    }

    clock.Restart();
    // min_ed reads each row's MinED alignment from the batch, computed once per example by the data pipeline (off the training thread).
    var source = Source(method == "min_ed" ? crossTrain.WithMinEdAlignments(map) : crossTrain);
    Train(student, objective, method == "sft" ? null : new LocalModelTeacher(teacher), source, studentSteps, method);
    var seconds = clock.Elapsed.TotalSeconds;
    var score = Score(student, studentTest, studentTokenizer);
    rows.Add((method, score, seconds));
    Console.WriteLine($"{method}: {Format(score)} ({seconds:F0} s)");
}

Console.WriteLine();
Console.WriteLine("| method | ROUGE-L before | ROUGE-L after | answer NLL before | answer NLL after | train s |");
Console.WriteLine("| --- | --- | --- | --- | --- | --- |");
foreach (var (method, score, seconds) in rows)
{
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"| {method} | {before.RougeL:F2} | {score.RougeL:F2} | {before.Nll:F3} | {score.Nll:F3} | {seconds:F0} |"));
}

static Gpt2Config Gpt2(HfTokenizer tokenizer, int layers, int hidden) => new()
{
    ModelType = "gpt2",
    VocabSize = tokenizer.VocabSize,
    HiddenSize = hidden,
    NumHiddenLayers = layers,
    NumAttentionHeads = Math.Max(1, hidden / 32),
    MaxPositionEmbeddings = MaxLength,
    EosTokenIds = [TokenizedDataset.PadId(tokenizer)],
    BosTokenId = TokenizedDataset.PadId(tokenizer),
};

static void Train(CausalLM model, IDistillationObjective objective, ITeacher? teacher, IBatchSource data, int steps, string name)
{
    var trainer = new DistillationTrainer(model, objective, teacher, new TrainingOptions
    {
        OutputDirectory = Path.Combine("runs", "cross-tokenizer", name),
        MaxSteps = steps,
        LearningRate = 3e-3,
        MinLearningRate = 1e-5,
        WarmupRatio = 0.05,
        SaveCheckpoints = false,
        Precision = TrainingPrecision.Float32,
        Seed = Seed,
    });
    trainer.Train(data);
}

// ROUGE-L (×100) of greedy answers (Distill.Eval's generation evaluation), and the teacher-forced mean NLL of the reference answers.
static (double RougeL, double Nll) Score(CausalLM model, TokenizedDataset set, HfTokenizer tokenizer)
{
    var eos = TokenizedDataset.PadId(tokenizer);
    var report = GenerationEvaluation.Evaluate(model, set, [new RougeLMetric()], new GenerationEvaluationOptions
    {
        Seeds = [Seed],   // greedy decoding: one seed is enough
        BatchSize = 50,
        StopText = null,
        Generation = new GenerationOptions { MaxNewTokens = 32, EosTokenIds = [eos] },
    });

    using var noGrad = no_grad();
    model.eval();
    var nll = default(PerplexityResult);
    for (var start = 0; start < set.Count; start += 50)
    {
        using var scope = NewDisposeScope();
        using var batch = set.Collate([.. Enumerable.Range(start, Math.Min(50, set.Count - start))]);
        var logits = model.Forward(new CausalLMInput { InputIds = batch.InputIds, AttentionMask = batch.AttentionMask, PositionIds = batch.PositionIds }).Logits!;
        nll = nll.Add(Perplexity.FromLogits(logits, batch.Labels));
    }

    model.train();
    return (report.Metrics[RougeLMetric.MetricName].Mean, nll.MeanNll);
}

static string Format((double RougeL, double Nll) s) => string.Create(CultureInfo.InvariantCulture, $"ROUGE-L {s.RougeL:F2}, answer NLL {s.Nll:F3}");

// Distill.Data's batch source is the trainer's IBatchSource: random access by (epoch, index), so resume is exact.
static DistillationBatchSource Source(TokenizedDataset dataset) => new(dataset, new BatchSampler(dataset.Count, 16, 42));

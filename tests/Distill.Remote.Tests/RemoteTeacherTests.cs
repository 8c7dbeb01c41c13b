using Distill.Data;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using static TorchSharp.torch;

namespace Distill.Remote.Tests;

/// <summary>The remote teacher against a real HTTP listener that speaks vLLM's JSON.</summary>
public sealed class RemoteTeacherTests : IDisposable
{
    private readonly FakeVllmServer server = new();
    private readonly List<string> logs = [];
    private readonly List<string> dirs = [];

    public void Dispose()
    {
        server.Dispose();
        foreach (var d in dirs)
        {
            Directory.Delete(d, recursive: true);
        }
    }

    private RemoteTeacherOptions Options(int k = 4) => new()
    {
        Endpoint = server.Endpoint,
        Model = server.Model,
        K = k,
        RequestBatchSize = 2,
        MaxConcurrency = 2,
        MaxRetries = 3,
        RetryDelay = TimeSpan.FromMilliseconds(1),
        AttemptTimeout = TimeSpan.FromSeconds(10),
        TotalTimeout = TimeSpan.FromSeconds(30),
        ApiKey = "sk-secret-123",
    };

    private RemoteTeacher Teacher(RemoteTeacherOptions options) => RemoteTeacher.Create(options, new ListLogger(logs));

    private static IReadOnlyList<TeacherCacheExample> Examples(int count = 5) =>
        [.. Enumerable.Range(0, count).Select(r =>
        {
            var ids = Enumerable.Range(0, 4 + r).Select(i => ((r * 7) + (i * 3)) % FakeVllmServer.Vocab).ToArray();
            return new TeacherCacheExample(r, ids, [.. Enumerable.Range(1, ids.Length - 1)]);
        })];

    /// <summary>The top-k the server's distribution has at each scored position: logits at t predict token t + 1.</summary>
    private static void AssertMatchesServer(TeacherCacheExample e, TopKSequence actual, int k)
    {
        for (var j = 0; j < e.ScoredPositions.Count; j++)
        {
            var lp = FakeVllmServer.LogProbs([.. e.InputIds.Take(e.ScoredPositions[j] + 1)]);
            var top = Enumerable.Range(0, lp.Length).OrderByDescending(v => lp[v]).Take(k).ToArray();
            Assert.Equal(top, actual.Ids.Skip(j * k).Take(k));
            Assert.Equal(top.Select(v => (float)lp[v]), actual.LogProbs.Skip(j * k).Take(k));
            var tail = Math.Log(1 - top.Sum(v => Math.Exp(lp[v])));
            Assert.Equal(tail, actual.LogTailMass[j], 5);
        }
    }

    [Fact]
    public async Task ProduceAsync_ReturnsTopKAndTailAtEveryScoredPosition()
    {
        using var teacher = Teacher(Options());
        var examples = Examples();
        var results = await teacher.ProduceAsync(examples, 4, CancellationToken.None);
        for (var i = 0; i < examples.Count; i++)
        {
            AssertMatchesServer(examples[i], results[i], 4);
        }

        Assert.Equal(3, server.CompletionRequests); // 5 rows, 2 per request
        Assert.All(server.AuthorizationHeaders, h => Assert.Equal("Bearer sk-secret-123", h));
        Assert.DoesNotContain(logs, l => l.Contains("sk-secret", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ServerErrors_5xxThenSuccess_RetriedWithoutLoss()
    {
        server.FailFirst = 2;
        using var teacher = Teacher(Options());
        var examples = Examples(2);
        var results = await teacher.ProduceAsync(examples, 4, CancellationToken.None);
        Assert.Equal(3, server.CompletionRequests);
        AssertMatchesServer(examples[1], results[1], 4);
        Assert.Contains(logs, l => l.Contains("HTTP 503", StringComparison.Ordinal));
    }

    [Fact]
    public async Task ServerErrors_Persistent5xx_FailsWholeCallWithClearError()
    {
        server.FailFirst = 1000;
        var options = Options();
        options.MaxRetries = 2;
        using var teacher = Teacher(options);
        var e = await Assert.ThrowsAsync<RemoteTeacherException>(() => teacher.ProduceAsync(Examples(), 4, CancellationToken.None));
        Assert.Contains("503", e.Message, StringComparison.Ordinal);
        Assert.Contains("Service Unavailable", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Timeout_SlowFirstAttempt_IsRetried()
    {
        server.DelayFirst = 1;
        var options = Options();
        options.RequestBatchSize = 8;
        options.AttemptTimeout = TimeSpan.FromMilliseconds(300);
        using var teacher = Teacher(options);
        var examples = Examples(3);
        var results = await teacher.ProduceAsync(examples, 4, CancellationToken.None);
        Assert.Equal(2, server.CompletionRequests);
        AssertMatchesServer(examples[2], results[2], 4);
    }

    [Fact]
    public async Task Timeout_EveryAttemptSlow_FailsWithClearError()
    {
        server.DelayFirst = 1000;
        var options = Options();
        options.MaxRetries = 1;
        options.AttemptTimeout = TimeSpan.FromMilliseconds(200);
        using var teacher = Teacher(options);
        var e = await Assert.ThrowsAsync<RemoteTeacherException>(() => teacher.ProduceAsync(Examples(1), 4, CancellationToken.None));
        Assert.Contains("failed after retries", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Cancellation_StopsTheCall()
    {
        server.DelayFirst = 1000;
        using var teacher = Teacher(Options());
        using var cts = new CancellationTokenSource(TimeSpan.FromMilliseconds(200));
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => teacher.ProduceAsync(Examples(), 4, cts.Token));
    }

    [Fact]
    public async Task MalformedJson_ThrowsNamingTheRequest()
    {
        server.MalformedJson = true;
        using var teacher = Teacher(Options());
        var e = await Assert.ThrowsAsync<InvalidDataException>(() => teacher.ProduceAsync(Examples(1), 4, CancellationToken.None));
        Assert.Contains("POST /v1/completions", e.Message, StringComparison.Ordinal);
        Assert.Contains("not valid JSON", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task MissingPositions_Throws()
    {
        server.DropLastPosition = true;
        using var teacher = Teacher(Options());
        var e = await Assert.ThrowsAsync<InvalidDataException>(() => teacher.ProduceAsync(Examples(1), 4, CancellationToken.None));
        Assert.Contains("missing positions", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task WrongModelName_ServerRefusesAndVerifyNamesServedModels()
    {
        var options = Options();
        options.Model = "other-model";
        using var teacher = Teacher(options);
        var e = await Assert.ThrowsAsync<RemoteTeacherException>(() => teacher.ProduceAsync(Examples(1), 4, CancellationToken.None));
        Assert.Contains("404", e.Message, StringComparison.Ordinal);
        Assert.Contains("`other-model` does not exist", e.Message, StringComparison.Ordinal);
        var verify = await Assert.ThrowsAsync<InvalidOperationException>(() => teacher.VerifyAsync(FakeVllmServer.Tokenize));
        Assert.Contains("does not serve model 'other-model'; it serves: 'teacher-model'", verify.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task ResponseForAnotherModel_Throws()
    {
        server.AnswerAsModel = "impostor";
        using var teacher = Teacher(Options());
        var e = await Assert.ThrowsAsync<InvalidDataException>(() => teacher.ProduceAsync(Examples(1), 4, CancellationToken.None));
        Assert.Contains("answered for model 'impostor'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task KAboveServerMaxLogprobs_ThrowsWithServerMessage()
    {
        server.MaxLogprobs = 3;
        using var teacher = Teacher(Options());
        var e = await Assert.ThrowsAsync<RemoteTeacherException>(() => teacher.ProduceAsync(Examples(1), 4, CancellationToken.None));
        Assert.Contains("greater than max allowed: 3", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Verify_SameTokenizer_Passes_Mismatch_ThrowsShowingBothIdLists()
    {
        using var teacher = Teacher(Options());
        await teacher.VerifyAsync(FakeVllmServer.Tokenize);
        server.TokenizeDifferently = true;
        var e = await Assert.ThrowsAsync<InvalidOperationException>(() => teacher.VerifyAsync(FakeVllmServer.Tokenize));
        Assert.Contains("disagrees with the student's", e.Message, StringComparison.Ordinal);
        Assert.Contains("local [", e.Message, StringComparison.Ordinal);
        Assert.Contains("server [", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Concurrency_IsBounded()
    {
        server.EveryDelay = TimeSpan.FromMilliseconds(100);
        var options = Options();
        options.RequestBatchSize = 1;
        options.MaxConcurrency = 2;
        using var teacher = Teacher(options);
        await teacher.ProduceAsync(Examples(6), 4, CancellationToken.None);
        Assert.Equal(6, server.CompletionRequests);
        Assert.Equal(2, server.MaxInFlight);
    }

    [Fact]
    public async Task AsCacheProducer_FillsTheOfflineCacheWithServerValues()
    {
        using var teacher = Teacher(Options());
        var dir = Path.Combine(Path.GetTempPath(), "distill-remote-cache-" + Guid.NewGuid().ToString("N"));
        dirs.Add(dir);
        var examples = Examples();
        var identity = new TeacherCacheIdentity { Teacher = server.Model, TokenizerHash = "fake", Template = "none", K = 4 };
        await new TeacherCacheWriter(dir, identity, examples, new TeacherCacheWriterOptions { RowsPerChunk = 2, BatchSize = 4 }).WriteChunksAsync(teacher);
        TeacherCacheWriter.Merge(dir);
        using var reader = TeacherCacheReader.Open(dir, new TeacherCacheExpectation { K = 4, Teacher = server.Model, DatasetHash = TeacherCacheHashes.Dataset(examples) });
        foreach (var e in examples)
        {
            var (positions, values) = reader.ReadRow((int)e.Row);
            Assert.Equal(e.ScoredPositions, positions);
            AssertMatchesServer(e, values, 4);
        }
    }

    [Fact]
    public void Infer_PaddedBatch_PlacesTopKAtScoredPositions()
    {
        using var teacher = Teacher(Options());
        using var scope = NewDisposeScope();
        // Row 0 left-padded by 2: tokens [5, 9, 13], scored at columns 3, 4. Row 1: [1, 2, 3, 4, 6], scored at 1 … 4.
        var batch = new DistillationBatch
        {
            InputIds = tensor(new long[] { 0, 0, 5, 9, 13, 1, 2, 3, 4, 6 }, [2, 5]),
            AttentionMask = tensor(new long[] { 0, 0, 1, 1, 1, 1, 1, 1, 1, 1 }, [2, 5]),
            Labels = tensor(new long[] { -100, -100, -100, 13, 7, -100, 3, 4, 6, 8 }, [2, 5]),
        };
        var output = teacher.Infer(batch, new ObjectiveRequirements { NeedsTeacherLogits = false, AcceptsSparseTopK = true });
        Assert.Equal(new long[] { 2, 5, 4 }, output.TopKIndices!.shape);
        var lp = FakeVllmServer.LogProbs([5, 9, 13]); // logits at the last token of row 0
        var top = Enumerable.Range(0, lp.Length).OrderByDescending(v => lp[v]).Take(4).Select(v => (long)v).ToArray();
        Assert.Equal(top, output.TopKIndices[0, 4].data<long>().ToArray());
        Assert.Equal(new long[] { 0, 1, 2, 3 }, output.TopKIndices[0, 1].data<long>().ToArray()); // padding: placeholder
        Assert.True(float.IsNegativeInfinity(output.TopKLogTailMass![1, 0].item<float>()));        // unscored
        Assert.True(output.TopKLogTailMass[1, 1].item<float>() < 0);
        Assert.Equal(TeacherCapabilities.SparseTopK, ((ITeacher)teacher).Info.Capabilities);
        var needsLogits = Assert.Throws<InvalidOperationException>(() => teacher.Infer(batch, new ObjectiveRequirements()));
        Assert.Contains("sparse top-k log-probs only", needsLogits.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Options_FromConfigurationWithEnvironmentKey_BindAndValidate()
    {
        Environment.SetEnvironmentVariable("DISTILL_TEST_REMOTE_KEY", "env-key");
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["RemoteTeacher:Endpoint"] = server.Endpoint.ToString(),
            ["RemoteTeacher:Model"] = server.Model,
            ["RemoteTeacher:K"] = "8",
            ["RemoteTeacher:ApiKeyEnvironmentVariable"] = "DISTILL_TEST_REMOTE_KEY",
        }).Build();
        var services = new ServiceCollection().AddLogging();
        services.AddDistill().AddDistillRemoteTeacher(config.GetSection("RemoteTeacher"));
        using var sp = services.BuildServiceProvider();
        var teacher = sp.GetRequiredService<RemoteTeacher>();
        Assert.Same(teacher, sp.GetRequiredService<ITeacher>());
        Assert.Same(teacher, sp.GetRequiredService<ITopKProducer>());
        Assert.Equal(8, teacher.Options.K);
        Assert.Equal("env-key", teacher.Options.ResolveApiKey());

        var bad = new ServiceCollection().AddLogging();
        bad.AddDistill().AddDistillRemoteTeacher(o => o.K = 0);
        using var badSp = bad.BuildServiceProvider();
        var e = Assert.Throws<OptionsValidationException>(() => badSp.GetRequiredService<IOptions<RemoteTeacherOptions>>().Value);
        Assert.Contains("Endpoint", e.Message, StringComparison.Ordinal);
    }

    private sealed class ListLogger(List<string> lines) : ILogger
    {
        public IDisposable? BeginScope<TState>(TState state)
            where TState : notnull => null;

        public bool IsEnabled(LogLevel logLevel) => true;

        public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter)
        {
            lock (lines)
            {
                lines.Add(formatter(state, exception));
            }
        }
    }
}

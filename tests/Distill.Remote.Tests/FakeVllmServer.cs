using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json.Nodes;

namespace Distill.Remote.Tests;

/// <summary>
/// An in-process HTTP server on 127.0.0.1 that speaks the part of vLLM's OpenAI-compatible API Distill uses, in vLLM's
/// JSON shapes: <c>GET /v1/models</c>, <c>POST /tokenize</c> (<c>{"tokens": [...], "count": n, "max_model_len": m}</c>) and
/// <c>POST /v1/completions</c> with <c>prompt_logprobs</c> (per choice, a list with <c>null</c> first and then, per
/// prompt position, <c>{"&lt;id&gt;": {"logprob": x, "rank": r, "decoded_token": "token_id:&lt;id&gt;"}}</c> holding the
/// top-k plus the prompt's own token). Faults are switched on per test.
/// </summary>
internal sealed class FakeVllmServer : IDisposable
{
    internal const int Vocab = 50;
    private readonly HttpListener listener = new();
    private readonly CancellationTokenSource stop = new();
    private readonly Task loop;
    private int completions;
    private int inFlight;

    internal FakeVllmServer(string model = "teacher-model")
    {
        Model = model;
        var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        Endpoint = new Uri($"http://127.0.0.1:{port}/");
        listener.Prefixes.Add(Endpoint.ToString());
        listener.Start();
        loop = Task.Run(Loop);
    }

    internal Uri Endpoint { get; }

    internal string Model { get; }

    /// <summary>Gets or sets the number of completion requests answered 503 before the server recovers.</summary>
    internal int FailFirst { get; set; }

    /// <summary>Gets or sets the number of completion requests delayed by <see cref="Delay"/>.</summary>
    internal int DelayFirst { get; set; }

    internal TimeSpan Delay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Gets or sets a fixed delay of every completion request (to observe concurrency).</summary>
    internal TimeSpan EveryDelay { get; set; }

    internal bool MalformedJson { get; set; }

    internal bool DropLastPosition { get; set; }

    internal string? AnswerAsModel { get; set; }

    internal bool TokenizeDifferently { get; set; }

    /// <summary>Gets or sets the server's <c>--max-logprobs</c>: larger requests get vLLM's 400 error.</summary>
    internal int MaxLogprobs { get; set; } = 20;

    internal int CompletionRequests => completions;

    internal int MaxInFlight { get; private set; }

    internal List<string?> AuthorizationHeaders { get; } = [];

    /// <summary>The fake teacher: log-probs over the vocabulary at the position after <paramref name="prefix"/>, from its content only.</summary>
    internal static double[] LogProbs(IReadOnlyList<int> prefix)
    {
        var seed = 17;
        foreach (var id in prefix)
        {
            seed = unchecked((seed * 31) + id + 1);
        }

        var rng = new Random(seed);
        var logits = Enumerable.Range(0, Vocab).Select(_ => rng.NextDouble() * 6).ToArray();
        var max = logits.Max();
        var lse = max + Math.Log(logits.Sum(l => Math.Exp(l - max)));
        return [.. logits.Select(l => l - lse)];
    }

    /// <summary>The fake tokenizer: one token per character, id = code mod 50.</summary>
    internal static int[] Tokenize(string text) => [.. text.Select(c => c % Vocab)];

    private async Task Loop()
    {
        while (!stop.IsCancellationRequested)
        {
            HttpListenerContext context;
            try
            {
                context = await listener.GetContextAsync().ConfigureAwait(false);
            }
            catch (Exception) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (HttpListenerException)
            {
                return;
            }

            _ = Task.Run(() => Handle(context));
        }
    }

    private async Task Handle(HttpListenerContext context)
    {
        try
        {
            var request = context.Request;
            lock (AuthorizationHeaders)
            {
                AuthorizationHeaders.Add(request.Headers["Authorization"]);
            }

            var body = request.HasEntityBody ? await new StreamReader(request.InputStream).ReadToEndAsync().ConfigureAwait(false) : "";
            var (status, text) = request.Url!.AbsolutePath switch
            {
                "/v1/models" => (200, new JsonObject { ["object"] = "list", ["data"] = new JsonArray(new JsonObject { ["id"] = Model, ["object"] = "model", ["owned_by"] = "vllm" }) }.ToJsonString()),
                "/tokenize" => Tokenize(JsonNode.Parse(body)!),
                "/v1/completions" => await Complete(JsonNode.Parse(body)!).ConfigureAwait(false),
                _ => (404, """{"detail":"Not Found"}"""),
            };
            var bytes = Encoding.UTF8.GetBytes(text);
            context.Response.StatusCode = status;
            context.Response.ContentType = "application/json";
            await context.Response.OutputStream.WriteAsync(bytes).ConfigureAwait(false);
            context.Response.Close();
        }
        catch (Exception) when (stop.IsCancellationRequested)
        {
        }
        catch (HttpListenerException)
        {
            // the client gave up (attempt timeout)
        }
        catch (ObjectDisposedException)
        {
        }
    }

    private (int, string) Tokenize(JsonNode body)
    {
        var ids = Tokenize(body["prompt"]!.GetValue<string>());
        if (TokenizeDifferently && ids.Length > 0)
        {
            ids[^1] = (ids[^1] + 1) % Vocab;
        }

        return (200, new JsonObject { ["count"] = ids.Length, ["max_model_len"] = 2048, ["tokens"] = new JsonArray([.. ids.Select(i => (JsonNode)i)]) }.ToJsonString());
    }

    private async Task<(int, string)> Complete(JsonNode body)
    {
        var n = Interlocked.Increment(ref completions);
        var now = Interlocked.Increment(ref inFlight);
        lock (AuthorizationHeaders)
        {
            MaxInFlight = Math.Max(MaxInFlight, now);
        }

        try
        {
            if (n <= DelayFirst)
            {
                await Task.Delay(Delay, stop.Token).ConfigureAwait(false);
            }

            if (EveryDelay > TimeSpan.Zero)
            {
                await Task.Delay(EveryDelay, stop.Token).ConfigureAwait(false);
            }

            if (n <= FailFirst)
            {
                return (503, """{"object":"error","message":"Service Unavailable","type":"ServiceUnavailableError","param":null,"code":503}""");
            }

            var model = body["model"]!.GetValue<string>();
            if (model != Model)
            {
                return (404, Error($"The model `{model}` does not exist.", "NotFoundError", 404));
            }

            var k = body["prompt_logprobs"]!.GetValue<int>();
            if (k > MaxLogprobs)
            {
                return (400, Error($"Requested prompt logprobs of {k}, which is greater than max allowed: {MaxLogprobs}", "BadRequestError", 400));
            }

            if (MalformedJson)
            {
                return (200, """{"id":"cmpl-1","object":"text_completion","choices":[{"index":0,""");
            }

            var choices = new JsonArray();
            var prompts = body["prompt"]!.AsArray();
            for (var i = 0; i < prompts.Count; i++)
            {
                var ids = prompts[i]!.AsArray().Select(x => x!.GetValue<int>()).ToArray();
                var positions = new JsonArray { null };
                for (var p = 1; p < ids.Length - (DropLastPosition ? 1 : 0); p++)
                {
                    var lp = LogProbs(ids[..p]);
                    var order = Enumerable.Range(0, Vocab).OrderByDescending(v => lp[v]).ToArray();
                    var entries = new JsonObject();
                    foreach (var v in order.Take(k).Append(ids[p]).Distinct())
                    {
                        entries[v.ToString(System.Globalization.CultureInfo.InvariantCulture)] = new JsonObject
                        {
                            ["logprob"] = lp[v],
                            ["rank"] = Array.IndexOf(order, v) + 1,
                            ["decoded_token"] = $"token_id:{v}",
                        };
                    }

                    positions.Add(entries);
                }

                choices.Add(new JsonObject
                {
                    ["index"] = i,
                    ["text"] = "x",
                    ["logprobs"] = null,
                    ["finish_reason"] = "length",
                    ["stop_reason"] = null,
                    ["prompt_logprobs"] = positions,
                });
            }

            return (200, new JsonObject
            {
                ["id"] = "cmpl-test",
                ["object"] = "text_completion",
                ["created"] = 0,
                ["model"] = AnswerAsModel ?? Model,
                ["choices"] = choices,
                ["usage"] = new JsonObject { ["prompt_tokens"] = 0, ["total_tokens"] = 0, ["completion_tokens"] = prompts.Count },
            }.ToJsonString());
        }
        finally
        {
            Interlocked.Decrement(ref inFlight);
        }
    }

    /// <summary>vLLM's error body: <c>{"error": {"message", "type", "param", "code"}}</c>.</summary>
    private static string Error(string message, string type, int code) =>
        new JsonObject { ["error"] = new JsonObject { ["message"] = message, ["type"] = type, ["param"] = null, ["code"] = code } }.ToJsonString();

    public void Dispose()
    {
        stop.Cancel();
        listener.Stop();
        listener.Close();
        try
        {
            loop.Wait(TimeSpan.FromSeconds(2));
        }
        catch (AggregateException)
        {
        }

        stop.Dispose();
    }
}

using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.RegularExpressions;
using FederatedFunctions.Core.Specs;
using FederatedFunctions.LocalHost.Local;
using FederatedFunctions.Ml;
using FederatedFunctions.TestSupport;
using Microsoft.Extensions.Configuration;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace FederatedFunctions.LocalHost.Tests;

/// <summary>
/// The dashboard in a real headless browser (Debian's chromium, driven by Playwright through its executable path), served by
/// a real <c>fl serve</c> process over real HTTP, on the shared Azurite. Every action goes through the page: a run is started
/// from its form, followed as its chart and participation grid fill in, cancelled and resumed with its buttons.
/// </summary>
[Collection(AzuriteCollection.Name)]
public sealed class DashboardTests(AzuriteFixture azurite, ITestOutputHelper log)
{
    /// <summary>Where the browser is: Debian's chromium package, which <c>scripts/setup.sh browser</c> installs.</summary>
    public static string Chromium => Environment.GetEnvironmentVariable("FL_CHROMIUM") ?? "/usr/bin/chromium";

    /// <summary>The screenshot the README shows, written by <see cref="Dashboard_StartFollowDownload_TheChartAndGridFillInFromThePage"/>.</summary>
    public static string ScreenshotPath => Path.Combine(RepositoryPaths.Root, ".fl", "test-artifacts", "dashboard.png");

    // Per-silo row counts (train, test): distinct, four digits, and each one a marker that an eyes-off page must not show.
    private static readonly (int Train, int Test)[] Sizes = [(1373, 1031), (1459, 1097), (1531, 1151)];

    [Fact]
    public async Task Dashboard_StartFollowDownload_TheChartAndGridFillInFromThePage()
    {
        await using var session = await DashboardSession.StartAsync(azurite, "dash-on", log, "/");
        var page = session.Page;
        Assert.EndsWith("/api/dashboard", page.Url, StringComparison.Ordinal);
        await Assertions.Expect(page.GetByTestId("connection")).ToContainTextAsync("connected");

        // Start a run from the form.
        const int Rounds = 16;
        await page.GetByTestId("spec").FillAsync(session.Spec("dash-on-run", Rounds, PrivacyModes.EyesOn, hidden: 256));
        await page.GetByTestId("start").ClickAsync();
        await Assertions.Expect(page.GetByTestId("start-result")).ToContainTextAsync("Started dash-on-run");

        // Watch it fill in: the number of accuracy points seen by the page over time, until every round is there.
        var seen = new List<int>();
        var points = page.Locator("[data-testid=chart-accuracy] circle[data-series=accuracy]");
        var deadline = DateTime.UtcNow.AddMinutes(3);
        while (seen.LastOrDefault() < Rounds)
        {
            Assert.True(DateTime.UtcNow < deadline, $"the chart did not reach {Rounds} points; seen {string.Join(",", seen)}");
            var n = await points.CountAsync();
            if (seen.Count == 0 || seen[^1] != n)
            {
                seen.Add(n);
            }

            await Task.Delay(100);
        }

        log.WriteLine($"accuracy points seen by the page: {string.Join(" → ", seen)}");
        Assert.True(seen.Count(n => n > 0 && n < Rounds) >= 1, $"the chart never showed a partial run: {string.Join(",", seen)}");
        Assert.Equal(seen.Order(), seen);
        await Assertions.Expect(page.Locator("[data-testid=run-status][data-run='dash-on-run']")).ToHaveTextAsync("Completed");

        // Each point and each grid cell is the manifests' value, as the API serves them.
        using var run = JsonDocument.Parse(await session.Http.GetStringAsync("/api/runs/dash-on-run"));
        var rounds = run.RootElement.GetProperty("rounds").EnumerateArray().ToArray();
        Assert.Equal(Rounds, rounds.Length);
        foreach (var r in rounds)
        {
            var round = r.GetProperty("round").GetInt32();
            var accuracy = double.Parse(await page.Locator($"[data-testid=chart-accuracy] circle[data-round='{round}']").GetAttributeAsync("data-value") ?? "NaN", CultureInfo.InvariantCulture);
            Assert.Equal(r.GetProperty("metrics").GetProperty("evalAccuracy").GetDouble(), accuracy, 12);
            var trainLoss = double.Parse(await page.Locator($"[data-testid=chart-loss] circle[data-series=train-loss][data-round='{round}']").GetAttributeAsync("data-value") ?? "NaN", CultureInfo.InvariantCulture);
            Assert.Equal(r.GetProperty("metrics").GetProperty("trainLoss").GetDouble(), trainLoss, 12);
        }

        var cells = page.Locator("[data-testid=participation] td[data-state]");
        Assert.Equal(Sizes.Length * Rounds, await cells.CountAsync());
        Assert.Equal(Sizes.Length * Rounds, await page.Locator("[data-testid=participation] td[data-state=took-part]").CountAsync());
        // Eyes-on, a cell says how many examples the silo's update was computed on.
        Assert.Contains($"{Sizes[0].Train} examples", await page.Locator($"[data-testid=participation] td[data-silo='{session.SiloIds[0]}'][data-round='1']").GetAttributeAsync("title"), StringComparison.Ordinal);
        await Assertions.Expect(page.GetByTestId("audit")).ToHaveAttributeAsync("data-valid", "true");
        await Assertions.Expect(page.GetByTestId("epsilon")).ToContainTextAsync("no differential privacy");

        // The checkpoint links download the model the manifest records.
        var link = await page.Locator("[data-testid=checkpoints] a[data-round='16']").GetAttributeAsync("href");
        var bytes = await session.Http.GetByteArrayAsync(link);
        using var checkpoints = JsonDocument.Parse(await session.Http.GetStringAsync("/api/runs/dash-on-run/checkpoints"));
        var model = checkpoints.RootElement.GetProperty("checkpoints").EnumerateArray().Single(c => c.GetProperty("round").GetInt32() == Rounds).GetProperty("model");
        Assert.Equal(model.GetProperty("sha256").GetString(), Convert.ToHexStringLower(SHA256.HashData(bytes)));

        await Assertions.Expect(page.Locator("[data-testid=runs] tr[data-id='dash-on-run']")).ToContainTextAsync("Completed");
        Directory.CreateDirectory(Path.GetDirectoryName(ScreenshotPath)!);
        await page.SetViewportSizeAsync(1400, 1000);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = ScreenshotPath, FullPage = true });
        Assert.True(new FileInfo(ScreenshotPath).Length > 10_000);
        log.WriteLine($"screenshot: {ScreenshotPath}");
        Assert.Empty(session.PageErrors);
    }

    [Fact]
    public async Task Dashboard_CancelThenResume_WithTheRunsButtons()
    {
        await using var session = await DashboardSession.StartAsync(azurite, "dash-cx", log);
        var page = session.Page;
        await page.GetByTestId("spec").FillAsync(session.Spec("dash-cx-run", 500, PrivacyModes.EyesOn));
        await page.GetByTestId("start").ClickAsync();
        await Assertions.Expect(page.Locator("[data-testid=chart-accuracy] circle").First).ToBeAttachedAsync(new() { Timeout = 120_000 });

        await page.GetByTestId("cancel").ClickAsync();
        await Assertions.Expect(page.GetByTestId("run-status")).ToHaveTextAsync("Terminated", new() { Timeout = 60_000 });
        await Assertions.Expect(page.GetByTestId("cancel")).ToBeDisabledAsync();
        // The API's answer to the button stays on the page through the refreshes that showed the new status.
        await Assertions.Expect(page.GetByTestId("action-result")).ToHaveTextAsync("cancel: 202 Terminating");
        var committed = int.Parse(await page.GetByTestId("progress").GetAttributeAsync("data-committed") ?? "-1", CultureInfo.InvariantCulture);
        Assert.InRange(committed, 1, 499);
        Assert.True(await page.Locator("[data-testid=checkpoints] a").CountAsync() >= committed + 1, "the checkpoints of a cancelled run stay listed");

        await page.GetByTestId("resume").ClickAsync();
        await Assertions.Expect(page.GetByTestId("run-status")).ToHaveTextAsync(new Regex("Running|Pending"), new() { Timeout = 60_000 });
        await Assertions.Expect(page.GetByTestId("progress")).Not.ToHaveAttributeAsync("data-committed", committed.ToString(CultureInfo.InvariantCulture), new() { Timeout = 120_000 });
        await page.GetByTestId("cancel").ClickAsync();
        await Assertions.Expect(page.GetByTestId("run-status")).ToHaveTextAsync("Terminated", new() { Timeout = 60_000 });

        // The list on the left shows the run with its status.
        await Assertions.Expect(page.Locator("[data-testid=runs] tr[data-id='dash-cx-run']")).ToContainTextAsync("Terminated");
        Assert.Empty(session.PageErrors);
    }

    [Fact]
    public async Task Dashboard_EyesOffRunWithDp_ShowsEpsilonAndNoPerSiloValue_WhileTheSameRunEyesOnShowsThem()
    {
        await using var session = await DashboardSession.StartAsync(azurite, "dash-eo", log);
        var page = session.Page;
        var markers = Sizes.SelectMany(s => new[] { s.Train, s.Test }).Select(n => n.ToString(CultureInfo.InvariantCulture)).ToArray();

        var found = new Dictionary<string, string[]>();
        foreach (var mode in new[] { PrivacyModes.EyesOff, PrivacyModes.EyesOn })
        {
            var runId = "dash-eo-" + mode;
            await page.GetByTestId("spec").FillAsync(session.Spec(runId, 3, mode, dp: true));
            await page.GetByTestId("start").ClickAsync();
            await Assertions.Expect(page.Locator($"[data-testid=run-status][data-run='{runId}']")).ToHaveTextAsync("Completed", new() { Timeout = 180_000 });
            await Assertions.Expect(page.Locator("[data-testid=participation] td[data-state=took-part]")).ToHaveCountAsync(3 * Sizes.Length);
            await Assertions.Expect(page.GetByTestId("audit")).ToHaveAttributeAsync("data-valid", "true");

            // Differential privacy: ε after each round, as the manifests record it.
            using var run = JsonDocument.Parse(await session.Http.GetStringAsync($"/api/runs/{runId}"));
            foreach (var r in run.RootElement.GetProperty("rounds").EnumerateArray())
            {
                var epsilon = r.GetProperty("privacy").GetProperty("epsilon").GetDouble();
                var round = r.GetProperty("round").GetInt32();
                Assert.Equal(epsilon, double.Parse(await page.Locator($"[data-testid=chart-epsilon] circle[data-round='{round}']").GetAttributeAsync("data-value") ?? "NaN", CultureInfo.InvariantCulture), 12);
                await Assertions.Expect(page.Locator($"table[data-testid=epsilon] td[data-round='{round}']")).ToHaveTextAsync(epsilon.ToString("F3", CultureInfo.InvariantCulture));
            }

            // Everything the page holds: its markup (text, attributes, tooltips) after the last refresh.
            var html = await page.ContentAsync();
            // A marker is a whole number: not part of a longer number, a decimal fraction or a hash.
            found[mode] = markers.Where(m => Regex.IsMatch(html, $"(?<![0-9A-Za-z.]){m}(?![0-9A-Za-z])")).ToArray();
            log.WriteLine($"{mode}: {html.Length} characters of page, per-silo counts found: [{string.Join(", ", found[mode])}]");
        }

        Assert.Empty(found[PrivacyModes.EyesOff]);
        // The control: the same page of the same run eyes-on shows each silo's train count, so the scan can find one.
        Assert.Equal(Sizes.Select(s => s.Train.ToString(CultureInfo.InvariantCulture)), found[PrivacyModes.EyesOn]);
        Assert.Empty(session.PageErrors);
    }

    /// <summary>Silos with distinct sizes, an <c>fl serve</c> process that knows them, and a browser page.</summary>
    private sealed class DashboardSession : IAsyncDisposable
    {
        private readonly TempDirectory home;
        private readonly Process serve;
        private readonly IPlaywright playwright;
        private readonly IBrowser browser;

        private DashboardSession(TempDirectory home, Process serve, IPlaywright playwright, IBrowser browser, IPage page, string baseUrl, string[] siloIds)
        {
            (this.home, this.serve, this.playwright, this.browser, Page, BaseUrl, SiloIds) = (home, serve, playwright, browser, page, baseUrl, siloIds);
            Http = new HttpClient { BaseAddress = new Uri(baseUrl) };
            page.PageError += (_, error) => PageErrors.Add(error);
            page.Console += (_, message) =>
            {
                if (message.Type == "error" && !message.Text.StartsWith("Failed to load resource: the server responded with a status of 4", StringComparison.Ordinal))
                {
                    PageErrors.Add(message.Text);
                }
            };
        }

        public IPage Page { get; }

        public string BaseUrl { get; }

        public string[] SiloIds { get; }

        public HttpClient Http { get; }

        /// <summary>Script errors and console errors of the page (a CSP violation is one), apart from the browser's note of each 4xx the API answered.</summary>
        public List<string> PageErrors { get; } = [];

        /// <summary>Starts it all, with the page opened at <paramref name="path"/>.</summary>
        public static async Task<DashboardSession> StartAsync(AzuriteFixture azurite, string prefix, ITestOutputHelper log, string path = "/api/dashboard")
        {
            var data = SyntheticData.Generate(new SyntheticOptions(Sizes.Length, 4, 8, 1600, 1200, null, 5))
                .Select(d => d with { SiloId = $"{prefix}-{d.SiloId}" }).ToArray();
            var ids = data.Select(d => d.SiloId).ToArray();
            var entries = await LocalSiloProvisioner.ProvisionAsync(azurite.Blobs, ids, TimeSpan.FromHours(2));
            for (var i = 0; i < ids.Length; i++)
            {
                await LocalSiloProvisioner.WriteSplitsAsync(entries[ids[i]], data[i] with { Train = Take(data[i].Train, Sizes[i].Train), Test = Take(data[i].Test, Sizes[i].Test) });
            }

            var home = new TempDirectory();
            var port = Azurite.FreePort();
            var trainer = LocalTrainerIdentity.Value;
            var psi = FlProcess.Create(home.Path, azurite.ConnectionString, "serve", "--urls", $"http://127.0.0.1:{port}")
                .WithSilos(new ConfigurationBuilder().AddInMemoryCollection(LocalSiloProvisioner.ToSettings(entries)).Build());
            psi.Environment["FL_Trust__ApprovedTrainers__0__Id"] = trainer.Id;
            psi.Environment["FL_Trust__ApprovedTrainers__0__Sha256"] = trainer.Sha256;
            psi.Environment["FL_TASK_HUB"] = "fldash" + Guid.NewGuid().ToString("N")[..8];
            var serve = Process.Start(psi)!;
            serve.OutputDataReceived += (_, e) => { if (e.Data is not null) { log.WriteLine("serve: " + e.Data); } };
            serve.ErrorDataReceived += (_, e) => { if (e.Data is not null) { log.WriteLine("serve! " + e.Data); } };
            serve.BeginOutputReadLine();
            serve.BeginErrorReadLine();
            var baseUrl = $"http://127.0.0.1:{port}";
            using (var probe = new HttpClient { BaseAddress = new Uri(baseUrl) })
            {
                var deadline = DateTime.UtcNow.AddMinutes(2);
                while (!await AnswersAsync(probe))
                {
                    Assert.False(serve.HasExited, "fl serve exited");
                    Assert.True(DateTime.UtcNow < deadline, "fl serve did not answer");
                    await Task.Delay(200);
                }
            }

            Assert.True(File.Exists(Chromium), $"No browser at {Chromium}: scripts/setup.sh browser installs Debian's chromium package.");
            var playwright = await Playwright.CreateAsync();
            var browser = await playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions { ExecutablePath = Chromium, Headless = true, Args = ["--no-sandbox"] });
            var page = await browser.NewPageAsync(new BrowserNewPageOptions { ViewportSize = new ViewportSize { Width = 1400, Height = 1000 } });
            page.SetDefaultTimeout(60_000);
            var session = new DashboardSession(home, serve, playwright, browser, page, baseUrl, ids);
            await page.GotoAsync(baseUrl + path);
            return session;
        }

        /// <summary>A run spec for these silos, as a user would paste it into the page.</summary>
        public string Spec(string runId, int rounds, string mode, int hidden = 32, bool dp = false) => JsonSerializer.Serialize(new
        {
            runId,
            model = new { architecture = "mlp", inputs = 8, hidden = new[] { hidden } },
            data = new { classes = 4 },
            training = new { rounds },
            silos = SiloIds,
            privacy = new { mode, minAggregateSilos = 2, differentialPrivacy = dp ? new { clipNorm = 1.0, noiseMultiplier = 1.1 } : null },
        });

        public async ValueTask DisposeAsync()
        {
            Http.Dispose();
            await browser.DisposeAsync();
            playwright.Dispose();
            serve.Kill(entireProcessTree: true);
            await serve.WaitForExitAsync();
            serve.Dispose();
            home.Dispose();
        }

        private static async Task<bool> AnswersAsync(HttpClient http)
        {
            try
            {
                return (await http.GetAsync("/api/runs")).StatusCode == HttpStatusCode.OK;
            }
            catch (HttpRequestException)
            {
                return false;
            }
        }

        private static TabularData Take(TabularData t, int rows) =>
            new(t.Features[..(rows * t.Columns)], t.Labels[..rows], rows, t.Columns, t.FeatureNames);
    }
}

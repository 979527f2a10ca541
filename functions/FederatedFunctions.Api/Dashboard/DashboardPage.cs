using System.Reflection;
using System.Security.Cryptography;
using System.Text;

namespace FederatedFunctions.Api.Dashboard;

/// <summary>
/// The dashboard (<c>GET /api/dashboard</c>): one HTML page that reads the runs and analyses API and nothing else, served by
/// the Functions app (behind its function key) and by <c>fl serve</c>.
/// </summary>
/// <remarks>
/// The page, its style sheet and its script are embedded in this assembly (<c>Dashboard/dashboard.{html,css,js}</c>) and
/// inlined into one document when first served, so it needs no CDN and no second request. Its Content-Security-Policy allows
/// exactly that script and that style (by SHA-256), requests to this origin only, and no framing.
/// </remarks>
public static class DashboardPage
{
    private static readonly Lazy<FileBody> Page = new(Build);

    /// <summary>The page as a response.</summary>
    public static ApiResponse Response() => new(200, Page.Value);

    private static FileBody Build()
    {
        var style = Read("dashboard.css");
        var script = Read("dashboard.js");
        var html = Read("dashboard.html").Replace("/*STYLE*/", style, StringComparison.Ordinal).Replace("/*SCRIPT*/", script, StringComparison.Ordinal);
        var csp = $"default-src 'none'; script-src '{Hash(script)}'; style-src '{Hash(style)}'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";
        return new FileBody(Encoding.UTF8.GetBytes(html), "text/html; charset=utf-8", Headers: new Dictionary<string, string>
        {
            ["Content-Security-Policy"] = csp,
            ["X-Content-Type-Options"] = "nosniff",
            ["Referrer-Policy"] = "no-referrer",
            ["Cache-Control"] = "no-store",
        });
    }

    private static string Hash(string inline) => "sha256-" + Convert.ToBase64String(SHA256.HashData(Encoding.UTF8.GetBytes(inline)));

    private static string Read(string name)
    {
        using var stream = typeof(DashboardPage).Assembly.GetManifestResourceStream("FederatedFunctions.Api.Dashboard." + name)
            ?? throw new InvalidOperationException($"The dashboard resource {name} is not embedded in {typeof(DashboardPage).Assembly.GetName().Name}.");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        return reader.ReadToEnd();
    }
}

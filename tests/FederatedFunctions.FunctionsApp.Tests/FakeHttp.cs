using System.Collections.Specialized;
using System.Security.Claims;
using System.Text;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Converters;
using Microsoft.Azure.Functions.Worker.Http;

namespace FederatedFunctions.FunctionsApp.Tests;

/// <summary>The binding data of an invocation, as the worker exposes it (keys are case-insensitive).</summary>
public sealed class FakeBindingContext(IReadOnlyDictionary<string, object?> data) : BindingContext
{
    public override IReadOnlyDictionary<string, object?> BindingData { get; } = data;
}

/// <summary>
/// A FunctionContext double: binding data (an activity's <c>instanceId</c>) and <see cref="InstanceServices"/>, which the real
/// worker sets to a new scope of the host's services per invocation. Members a direct call never touches throw.
/// </summary>
public sealed class FakeFunctionContext : FunctionContext
{
    public Dictionary<string, object?> Data { get; } = new(StringComparer.OrdinalIgnoreCase);
    public override string InvocationId { get; } = Guid.NewGuid().ToString();
    public override string FunctionId => "test-function";
    public override TraceContext TraceContext => throw new NotSupportedException();
    public override BindingContext BindingContext => new FakeBindingContext(Data);
    public override RetryContext RetryContext => throw new NotSupportedException();
    public override IServiceProvider InstanceServices { get; set; } = null!;
    public override FunctionDefinition FunctionDefinition => throw new NotSupportedException();
    public override IDictionary<object, object> Items { get; set; } = new Dictionary<object, object>();
    public override IInvocationFeatures Features => throw new NotSupportedException();
    public override CancellationToken CancellationToken => CancellationToken.None;
}

public sealed class FakeRequest : HttpRequestData
{
    public FakeRequest(FunctionContext context, string method, string url, byte[]? body = null, string? contentType = null)
        : base(context)
    {
        Method = method;
        Url = new Uri(url);
        Body = new MemoryStream(body ?? []);
        if (contentType is not null)
        {
            Headers.Add("Content-Type", contentType);
        }

        if (body is not null)
        {
            Headers.Add("Content-Length", body.Length.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
    }

    public override Stream Body { get; }
    public override HttpHeadersCollection Headers { get; } = new();
    public override IReadOnlyCollection<IHttpCookie> Cookies => [];
    public override Uri Url { get; }
    public override IEnumerable<ClaimsIdentity> Identities => [];
    public override string Method { get; }
    public override NameValueCollection Query => System.Web.HttpUtility.ParseQueryString(Url.Query);
    public override HttpResponseData CreateResponse() => new FakeResponse(FunctionContext);

    public static FakeRequest Json(FunctionContext context, string method, string url, string json) =>
        new(context, method, url, Encoding.UTF8.GetBytes(json), "application/json");
}

public sealed class FakeResponse(FunctionContext context) : HttpResponseData(context)
{
    public override System.Net.HttpStatusCode StatusCode { get; set; }
    public override HttpHeadersCollection Headers { get; set; } = new();
    public override Stream Body { get; set; } = new MemoryStream();
    public override HttpCookies Cookies => throw new NotSupportedException();

    public string Text => Encoding.UTF8.GetString(((MemoryStream)Body).ToArray());
}

/// <summary>What the worker hands an input converter.</summary>
public sealed class FakeConverterContext(Type target, object? source, FunctionContext context) : ConverterContext
{
    public override Type TargetType => target;
    public override object? Source => source;
    public override FunctionContext FunctionContext => context;
    public override IReadOnlyDictionary<string, object> Properties { get; } = new Dictionary<string, object>();
}

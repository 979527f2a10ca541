using System.Collections.Specialized;
using System.Security.Claims;
using System.Text;
using Microsoft.Azure.Functions.Worker;
using Microsoft.Azure.Functions.Worker.Http;

namespace FederatedFunctions.FunctionsApp.Tests;

/// <summary>Just enough of the Functions HTTP model to call the trigger methods directly.</summary>
internal sealed class FakeFunctionContext : FunctionContext
{
    public override string InvocationId => "test-invocation";
    public override string FunctionId => "test-function";
    public override TraceContext TraceContext => throw new NotSupportedException();
    public override BindingContext BindingContext => throw new NotSupportedException();
    public override RetryContext RetryContext => throw new NotSupportedException();
    public override IServiceProvider InstanceServices { get; set; } = null!;
    public override FunctionDefinition FunctionDefinition => throw new NotSupportedException();
    public override IDictionary<object, object> Items { get; set; } = new Dictionary<object, object>();
    public override IInvocationFeatures Features => throw new NotSupportedException();
}

internal sealed class FakeRequest(string method, string url, byte[]? body = null) : HttpRequestData(new FakeFunctionContext())
{
    public override Stream Body { get; } = new MemoryStream(body ?? []);
    public override HttpHeadersCollection Headers { get; } = new();
    public override IReadOnlyCollection<IHttpCookie> Cookies => [];
    public override Uri Url { get; } = new(url);
    public override IEnumerable<ClaimsIdentity> Identities => [];
    public override string Method { get; } = method;
    public override NameValueCollection Query => System.Web.HttpUtility.ParseQueryString(Url.Query);
    public override HttpResponseData CreateResponse() => new FakeResponse(FunctionContext);

    public static FakeRequest Json(string method, string url, string json) => new(method, url, Encoding.UTF8.GetBytes(json));
}

internal sealed class FakeResponse(FunctionContext context) : HttpResponseData(context)
{
    public override System.Net.HttpStatusCode StatusCode { get; set; }
    public override HttpHeadersCollection Headers { get; set; } = new();
    public override Stream Body { get; set; } = new MemoryStream();
    public override HttpCookies Cookies => throw new NotSupportedException();

    public string Text => Encoding.UTF8.GetString(((MemoryStream)Body).ToArray());
}

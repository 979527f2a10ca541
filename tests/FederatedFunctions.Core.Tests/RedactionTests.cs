namespace FederatedFunctions.Core.Tests;

public sealed class RedactionTests
{
    [Theory]
    [InlineData("GET https://acct.blob.core.windows.net/silo-1/data/train.csv?sv=2024-08-04&sig=AbC%2B123 failed", "GET https://acct.blob.core.windows.net/silo-1/data/train.csv?[redacted] failed")]
    [InlineData("DefaultEndpointsProtocol=https;AccountName=a;AccountKey=c2VjcmV0;EndpointSuffix=x", "DefaultEndpointsProtocol=https;AccountName=a;AccountKey=[redacted];EndpointSuffix=x")]
    [InlineData("token = eyJhbGciOi and password=hunter2", "token=[redacted] and password=[redacted]")]
    [InlineData("silo 'silo-1': reference 3f1c: the silo's data is invalid", "silo 'silo-1': reference 3f1c: the silo's data is invalid")]
    public void Redact_CredentialsAndUrlQueries_AreReplaced_TheRestKept(string text, string expected) =>
        Assert.Equal(expected, Redaction.Redact(text));

    [Fact]
    public void Redact_Null_StaysNull() => Assert.Null(Redaction.Redact(null));
}

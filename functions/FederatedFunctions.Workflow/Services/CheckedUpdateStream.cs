using System.Security.Cryptography;
using FederatedFunctions.Core.Runs;
using FederatedFunctions.Core.Tensors;

namespace FederatedFunctions.Workflow.Services;

/// <summary>
/// An update read as it downloads, hashed as it is read, then checked as <see cref="VerifiedReads"/> checks a whole read:
/// exactly the size the silo reported and its SHA-256. Its header is read first (<see cref="ReadLayoutAsync"/>); the
/// tensors' bytes are read by the aggregator; <see cref="VerifyAsync"/> reads whatever is left and decides.
/// </summary>
/// <remarks>Nothing read through it counts until <see cref="VerifyAsync"/> says so. Owns the download's stream.</remarks>
internal sealed class CheckedUpdateStream(Stream download, BlobRef reference) : Stream
{
    private readonly IncrementalHash sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
    private long position;

    /// <summary>The file's layout from its length field and header, checked against the reported size; null when they are malformed or the stream ends first.</summary>
    public async Task<SafetensorsLayout?> ReadLayoutAsync(CancellationToken cancellationToken)
    {
        var prefix = new byte[8];
        if (reference.Bytes < prefix.Length || await ReadAtLeastAsync(prefix, prefix.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false) < prefix.Length)
        {
            return null;
        }

        try
        {
            var header = new byte[Safetensors.DataStart(prefix, reference.Bytes)];
            prefix.CopyTo(header, 0);
            var rest = header.AsMemory(prefix.Length);
            return await ReadAtLeastAsync(rest, rest.Length, throwOnEndOfStream: false, cancellationToken).ConfigureAwait(false) < rest.Length
                ? null
                : Safetensors.ParseLayout(header, reference.Bytes);
        }
        catch (SafetensorsFormatException)
        {
            return null;
        }
    }

    /// <summary>Reads what is left (at most one byte past the reported size) and whether the whole is the reported size and hash.</summary>
    public async ValueTask<bool> VerifyAsync(CancellationToken cancellationToken)
    {
        var rest = new byte[64 * 1024];
        while (position <= reference.Bytes)
        {
            var want = (int)Math.Min(rest.Length, reference.Bytes + 1 - position);
            if (await ReadAsync(rest.AsMemory(0, want), cancellationToken).ConfigureAwait(false) == 0)
            {
                break;
            }
        }

        return position == reference.Bytes
            && string.Equals(Convert.ToHexStringLower(sha.GetHashAndReset()), reference.Sha256, StringComparison.Ordinal);
    }

    public override async ValueTask<int> ReadAsync(Memory<byte> buffer, CancellationToken cancellationToken = default)
    {
        int n;
        try
        {
            n = await download.ReadAsync(buffer, cancellationToken).ConfigureAwait(false);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // The download itself failed (after the SDK's own retries), as opposed to anything done with its bytes.
            throw new UpdateDownloadException(reference.Uri, ex);
        }

        sha.AppendData(buffer.Span[..n]);
        position += n;
        return n;
    }

    public override Task<int> ReadAsync(byte[] buffer, int offset, int count, CancellationToken cancellationToken) =>
        ReadAsync(buffer.AsMemory(offset, count), cancellationToken).AsTask();

    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException("Read it asynchronously.");

    public override bool CanRead => true;

    public override bool CanSeek => false;

    public override bool CanWrite => false;

    public override long Length => throw new NotSupportedException();

    public override long Position { get => position; set => throw new NotSupportedException(); }

    public override void Flush()
    {
    }

    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();

    public override void SetLength(long value) => throw new NotSupportedException();

    public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();

    protected override void Dispose(bool disposing)
    {
        if (disposing)
        {
            download.Dispose();
            sha.Dispose();
        }

        base.Dispose(disposing);
    }
}

/// <summary>A streamed update's download failed on the way; the update can still be read whole.</summary>
internal sealed class UpdateDownloadException(string uri, Exception inner) : IOException($"the download of {uri} failed: {inner.GetType().Name}", inner);

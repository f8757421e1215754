package cluster

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/nasctl/nasctl/dataset"
	"github.com/nats-io/nats.go/jetstream"
)

// datasetName is the name of a dataset's archive in the datasets bucket:
// its content hash without the algorithm's prefix.
func datasetName(hash string) string { return strings.TrimPrefix(hash, "sha256:") }

// contentHash is the form of a dataset's content hash (dataset.Load).
var contentHash = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// checkHash refuses a job's dataset hash that is not a content hash: the
// worker names a folder of its cache after it, and removes that folder
// when it does not load, so "../x" or "" must never reach filepath.Join.
func checkHash(hash string) error {
	if !contentHash.MatchString(hash) {
		return fmt.Errorf("the job names dataset %q, which is not a content hash (sha256: and 64 hex digits): refused; run the same nasctl on the driver and the workers", hash)
	}
	return nil
}

// uploadDataset puts d's image files in the datasets bucket as a tar
// archive, unless an archive of the same content is there already.
func (b *Broker) uploadDataset(ctx context.Context, d *dataset.Dataset) error {
	name := datasetName(d.Hash)
	if _, err := b.l.datasets.GetInfo(ctx, name); err == nil {
		return nil
	} else if !errors.Is(err, jetstream.ErrObjectNotFound) {
		return fmt.Errorf("looking for the dataset on the broker: %w", err)
	}
	r, w := io.Pipe()
	go func() { w.CloseWithError(writeArchive(w, d.Dir, d.Files)) }()
	_, err := b.l.datasets.Put(ctx, jetstream.ObjectMeta{Name: name, Description: d.Dir}, r)
	r.CloseWithError(err) // stops the writer if Put gave up
	if err != nil {
		return fmt.Errorf("sending %s to the broker: %w", d.Dir, err)
	}
	return nil
}

// writeArchive writes the files of dir (slash-separated, relative) as a tar
// archive, without times or owners: the content alone.
func writeArchive(w io.Writer, dir string, files []string) error {
	tw := tar.NewWriter(w)
	for _, f := range files {
		if err := addFile(tw, dir, f); err != nil {
			return err
		}
	}
	return tw.Close()
}

func addFile(tw *tar.Writer, dir, name string) error {
	f, err := os.Open(filepath.Join(dir, filepath.FromSlash(name)))
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: st.Size(), Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return err
	}
	_, err = io.Copy(tw, f)
	return err
}

// fetchDataset returns the folder, under cache, of the dataset of content
// hash, fetching it from the broker when it is not there yet. The bucket
// checks the archive's own digest as it is read; the caller checks the
// loaded folder's hash.
func (b *Broker) fetchDataset(ctx context.Context, hash, cache string) (string, error) {
	if err := checkHash(hash); err != nil {
		return "", err
	}
	dir := filepath.Join(cache, datasetName(hash))
	if _, err := os.Stat(dir); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	tmp, err := os.MkdirTemp(cache, ".fetch-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	obj, err := b.l.datasets.Get(ctx, datasetName(hash))
	if errors.Is(err, jetstream.ErrObjectNotFound) {
		return "", fmt.Errorf("dataset %s is not on the broker (its driver sends it when the search starts; was the broker's store reset?)", hash)
	}
	if err != nil {
		return "", fmt.Errorf("fetching dataset %s: %w", hash, err)
	}
	defer obj.Close()
	err = readArchive(obj, tmp)
	if err == nil {
		_, err = io.Copy(io.Discard, obj) // to the end, where the digest is checked
	}
	if err != nil {
		return "", fmt.Errorf("fetching dataset %s: %w", hash, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(dir); serr == nil {
			return dir, nil // another worker on this machine was faster
		}
		return "", err
	}
	return dir, nil
}

// readArchive unpacks a tar archive of plain files into dir, refusing names
// that would land outside it.
func readArchive(r io.Reader, dir string) error {
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		name := filepath.FromSlash(h.Name)
		if h.Typeflag != tar.TypeReg || !filepath.IsLocal(name) {
			return fmt.Errorf("archive entry %q: not a plain file inside the dataset", h.Name)
		}
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return err
		}
		if err := writeFile(path, tr); err != nil {
			return err
		}
	}
}

func writeFile(path string, r io.Reader) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, r); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

package replication

import (
	"fmt"
	"slices"
	"strings"

	"github.com/zrep/zrep/pdu"
)

// SendMode is how a filesystem's streams are sent, as plans write it.
type SendMode string

const (
	// SendRaw sends an encrypted filesystem as it is on disk (`zfs send
	// -w`): the destination stores it still encrypted and needs no key.
	SendRaw SendMode = "raw"
	// SendDecrypted sends an encrypted filesystem as plaintext
	// (--decrypt): its key must be loaded on the source.
	SendDecrypted SendMode = "decrypted"
	// SendPlain sends a filesystem that is not encrypted, as it is.
	SendPlain SendMode = "plain"
)

// encryptionPlan is how planning sends one filesystem, and why.
type encryptionPlan struct {
	mode SendMode
	why  string
}

// planEncryption decides, for the source filesystem src, whether its
// streams go raw: an encrypted source is sent raw unless the operator asks
// for --decrypt; one that is not encrypted goes as it is, whatever its
// parent.
func planEncryption(cfg *Config, src *pdu.Filesystem) encryptionPlan {
	switch {
	case !src.Encrypted():
		return encryptionPlan{SendPlain, "not encrypted: sent as it is"}
	case cfg.Decrypt:
		return encryptionPlan{SendDecrypted, fmt.Sprintf("decrypted (--decrypt): %s is encrypted (encryption root %s) and is sent as plaintext; the destination stores it under its own parent's encryption, if any", src.Path, src.EncryptionRoot)}
	}
	return encryptionPlan{SendRaw, fmt.Sprintf("raw (zfs send -w): %s is encrypted (encryption root %s); the destination stores it still encrypted and needs no key", src.Path, src.EncryptionRoot)}
}

// receiveUnencrypted reports whether the full receive of src must say
// encryption=off to keep it unencrypted: src is not encrypted, and its
// destination's parent is the raw copy of its encrypted source parent
// srcParent, or is listed (dstParent) encrypted with its key not loaded.
// There zfs would have it inherit an encryption whose key is not loaded,
// and refuse it.
func receiveUnencrypted(cfg *Config, src, srcParent, dstParent *pdu.Filesystem) bool {
	if src.Encrypted() {
		return false
	}
	if srcParent != nil && srcParent.Encrypted() && !cfg.Decrypt {
		return true
	}
	return dstParent != nil && dstParent.Encrypted() && dstParent.KeyStatus == pdu.KeyUnavailable
}

// receiveOptions are the options of pf's receive: the operator's, and
// encryption=off for a full receive that must stay unencrypted
// (receiveUnencrypted); zfs takes it on full streams only.
func (pf *plannedFilesystem) receiveOptions(cfg *Config, full bool) pdu.ReceiveOptions {
	opts := cfg.Receive
	if full && pf.receiveUnencrypted {
		opts.Set = append(slices.Clip(opts.Set), pdu.Property{Name: "encryption", Value: "off"})
	}
	return opts
}

// receivedRaw reports whether the destination dst of src holds raw
// streams: it is encrypted, and its encryption root is itself (a raw
// receive makes each filesystem its own encryption root) or the
// destination of src's encryption root (after `zfs change-key -i`).
func receivedRaw(cfg *Config, src, dst *pdu.Filesystem) bool {
	if !dst.Encrypted() {
		return false
	}
	if dst.EncryptionRoot == dst.Path {
		return true
	}
	root := src.EncryptionRoot
	inside := root == cfg.SourceRoot || strings.HasPrefix(root, cfg.SourceRoot+"/")
	return inside && dst.EncryptionRoot == cfg.destination(root)
}

// ConflictEncryption says an existing destination was received the other
// way, raw or decrypted, than the source is sent now. zfs cannot continue
// a decrypted backup with raw streams, and zrep does not mix plaintext
// streams into a raw one; switching needs a new destination.
type ConflictEncryption struct {
	Filesystem, Destination string
	// Mode is how the source would be sent now.
	Mode SendMode
}

func (c *ConflictEncryption) Error() string {
	if c.Mode == SendRaw {
		return fmt.Sprintf("%s is encrypted and is sent raw, but %s was received decrypted (it is not encrypted with the source's key), and raw streams cannot continue it: "+
			"replicate to a new destination to keep the backup encrypted, or use --decrypt to go on sending plaintext to it", c.Filesystem, c.Destination)
	}
	return fmt.Sprintf("%s was received raw (still encrypted with the key of %s), and --decrypt would continue it with plaintext streams: "+
		"leave out --decrypt to go on raw, or replicate to a new destination", c.Destination, c.Filesystem)
}

// encryptionProblem is what stops fs from being sent the way ep says to
// its destination dst (nil while it does not exist), or nil: the existing
// destination was received the other way (a *ConflictEncryption), or a
// decrypted send needs a key that is not loaded. sends is set when there
// is something to send; full when its first step is a full stream into an
// existing destination (a placeholder, or --rollback), which zfs refuses
// for raw streams.
func encryptionProblem(cfg *Config, ep encryptionPlan, src, dst *pdu.Filesystem, full, sends bool) error {
	received := dst != nil && !dst.Placeholder && hasSnapshot(dst.Versions)
	raw := received && receivedRaw(cfg, src, dst)
	switch {
	case ep.mode == SendRaw && received && !raw:
		return &ConflictEncryption{Filesystem: src.Path, Destination: dst.Path, Mode: SendRaw}
	case ep.mode == SendDecrypted && raw:
		return &ConflictEncryption{Filesystem: src.Path, Destination: dst.Path, Mode: SendDecrypted}
	case ep.mode == SendDecrypted && sends && src.KeyStatus == pdu.KeyUnavailable:
		return fmt.Errorf("--decrypt needs the key of %s loaded on the source, and it is not (keystatus unavailable): load it (zfs load-key %s), or leave out --decrypt to send it raw",
			src.Path, src.EncryptionRoot)
	case ep.mode == SendRaw && full && dst != nil && dst.Placeholder:
		return fmt.Errorf("%s is a placeholder, and zfs cannot replace it with the raw stream of the encrypted %s (receive -F does not overwrite an unencrypted dataset with an encrypted one): "+
			"if it holds no filesystems, destroy it (zfs destroy %s) and the next run receives %s there; otherwise replicate the encrypted tree to a new destination, or use --decrypt",
			dst.Path, src.Path, dst.Path, src.Path)
	case full && dst != nil && dst.Placeholder && dst.Encrypted():
		return fmt.Errorf("%s is a placeholder that inherits its parent's encryption, and zfs cannot replace it with the stream of %s (receive -F does not destroy an encrypted filesystem): "+
			"if it holds no filesystems, destroy it (zfs destroy %s) and the next run receives %s there; otherwise replicate to a new destination",
			dst.Path, src.Path, dst.Path, src.Path)
	case ep.mode == SendRaw && full && dst != nil:
		return fmt.Errorf("zfs cannot overwrite the existing %s with the raw stream of the encrypted %s (receive -F refuses raw streams into an existing filesystem): destroy it, or replicate to a new destination",
			dst.Path, src.Path)
	}
	return nil
}

func hasSnapshot(vs []*pdu.FilesystemVersion) bool {
	for _, v := range vs {
		if v.Type == pdu.Snapshot {
			return true
		}
	}
	return false
}

// EncryptionStatus is one side's encryption of a filesystem, as plan and
// status show it.
type EncryptionStatus struct {
	Encrypted bool `json:"encrypted"`
	// EncryptionRoot is the dataset whose key encrypts it, "" when it is
	// not encrypted.
	EncryptionRoot string `json:"encryption_root"`
	// KeyStatus is "available" or "unavailable", "" when not encrypted.
	KeyStatus string `json:"key_status"`
}

// EncryptionOf is fs's encryption as plan and status show it.
func EncryptionOf(fs *pdu.Filesystem) *EncryptionStatus {
	if !fs.Encrypted() {
		return &EncryptionStatus{}
	}
	return &EncryptionStatus{Encrypted: true, EncryptionRoot: fs.EncryptionRoot, KeyStatus: fs.KeyStatus}
}

// String says it in a few words: "encrypted (root tank/a, key available)".
func (s *EncryptionStatus) String() string {
	if s == nil {
		return "not created yet"
	}
	if !s.Encrypted {
		return "not encrypted"
	}
	key := s.KeyStatus
	if key == "" {
		key = "unknown"
	}
	return fmt.Sprintf("encrypted (root %s, key %s)", s.EncryptionRoot, key)
}

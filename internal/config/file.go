package config

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"gopkg.in/yaml.v3"
)

// MaxFileSize bounds a configuration file; real ones are a few kilobytes.
const MaxFileSize = 1 << 20

// File is a parsed configuration file: a YAML mapping whose top-level keys
// are setting names, each with one value (a string, number or boolean,
// written as on the command line) or a list of them, which stands for the
// comma-separated form ("mechanisms: [SCRAM-SHA-256, PLAIN]").
type File struct {
	Path    string
	entries []FileEntry
	byKey   map[string]int
}

// FileEntry is one key of a File.
type FileEntry struct {
	Key   string
	Value string // "" for a null or empty value, which counts as unset
	Line  int    // 1-based line of the key
}

// FileError is a problem with a configuration file: its syntax, or one of
// its keys (Key and Line are then set).
type FileError struct {
	Path string
	Line int    // 0 when the error is about the whole file
	Key  string // "" when the error is not about one key
	Err  error
}

func (e *FileError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "config file %s", e.Path)
	if e.Line > 0 {
		fmt.Fprintf(&b, " line %d", e.Line)
	}
	if e.Key != "" {
		fmt.Fprintf(&b, ": %s", e.Key)
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

func (e *FileError) Unwrap() error { return e.Err }

// LoadFile reads and parses the configuration file at path.
func LoadFile(path string) (*File, error) {
	fh, err := os.Open(path)
	if err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	defer fh.Close()
	data, err := io.ReadAll(io.LimitReader(fh, MaxFileSize+1))
	if err != nil {
		return nil, &FileError{Path: path, Err: err}
	}
	if len(data) > MaxFileSize {
		return nil, &FileError{Path: path, Err: fmt.Errorf("larger than %d bytes", MaxFileSize)}
	}
	return ParseFile(path, data)
}

// ParseFile parses data as the configuration file path. It checks the
// shape only (a mapping of names to single values or lists of them, no
// name twice); which names exist is the Set's business.
func ParseFile(path string, data []byte) (f *File, err error) {
	defer func() {
		// The YAML decoder is not ours; whatever input trips it must
		// still be an error about the file, not a crash at start.
		if r := recover(); r != nil {
			f, err = nil, &FileError{Path: path, Err: fmt.Errorf("not valid YAML: %v", r)}
		}
	}()
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, &FileError{Path: path, Err: fmt.Errorf("not valid YAML: %w", trimYAML(err))}
	}
	f = &File{Path: path, byKey: map[string]int{}}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return f, nil // empty, or only comments
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return f, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, &FileError{Path: path, Line: root.Line, Err: errors.New("the top level must map setting names to values (name: value)")}
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if k.Kind != yaml.ScalarNode || k.Value == "" {
			return nil, &FileError{Path: path, Line: k.Line, Err: errors.New("a key must be a setting name")}
		}
		if first, dup := f.byKey[k.Value]; dup {
			return nil, &FileError{Path: path, Line: k.Line, Key: k.Value,
				Err: fmt.Errorf("set twice (first on line %d)", f.entries[first].Line)}
		}
		value, err := fileValue(v)
		if err != nil {
			return nil, &FileError{Path: path, Line: k.Line, Key: k.Value, Err: err}
		}
		f.byKey[k.Value] = len(f.entries)
		f.entries = append(f.entries, FileEntry{Key: k.Value, Value: value, Line: k.Line})
	}
	return f, nil
}

// fileValue turns a YAML value into a setting's text form.
func fileValue(v *yaml.Node) (string, error) {
	if v.Kind == yaml.AliasNode && v.Alias != nil {
		v = v.Alias
	}
	switch v.Kind {
	case yaml.ScalarNode:
		if v.Tag == "!!null" {
			return "", nil
		}
		return v.Value, nil
	case yaml.SequenceNode:
		items := make([]string, 0, len(v.Content))
		for _, it := range v.Content {
			if it.Kind == yaml.AliasNode && it.Alias != nil {
				it = it.Alias
			}
			if it.Kind != yaml.ScalarNode || it.Tag == "!!null" {
				return "", errors.New("a list may only hold single values")
			}
			if strings.Contains(it.Value, ",") {
				return "", fmt.Errorf("list item %q holds a comma; write the whole value as one string instead", it.Value)
			}
			items = append(items, it.Value)
		}
		return strings.Join(items, ","), nil
	}
	return "", errors.New("must be a single value or a list of them, not a mapping")
}

// trimYAML drops the decoder's "yaml: " prefix; the FileError says which
// file it is.
func trimYAML(err error) error {
	if s, ok := strings.CutPrefix(err.Error(), "yaml: "); ok {
		return errors.New(s)
	}
	return err
}

// Entries returns the file's keys in the order written.
func (f *File) Entries() []FileEntry { return append([]FileEntry(nil), f.entries...) }

// Lookup returns the entry of key.
func (f *File) Lookup(key string) (FileEntry, bool) {
	i, ok := f.byKey[key]
	if !ok {
		return FileEntry{}, false
	}
	return f.entries[i], true
}

// Where names an entry in errors: "config file F line N: key".
func (f *File) Where(e FileEntry) string {
	return fmt.Sprintf("config file %s line %d: %s", f.Path, e.Line, e.Key)
}

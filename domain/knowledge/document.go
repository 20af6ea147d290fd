package knowledge

// BlockKind says what part of a document's structure a block is. Chunking
// keeps blocks whole where it can and never splits a table.
type BlockKind string

// The kinds of block extraction produces.
const (
	Heading   BlockKind = "heading"
	Paragraph BlockKind = "paragraph"
	ListItem  BlockKind = "list_item"
	Table     BlockKind = "table"
	Code      BlockKind = "code"
)

// Block is one structural unit of a document: a heading, a paragraph, a list
// item, a whole table (rows on lines, cells separated by " | ") or a code block.
type Block struct {
	Kind BlockKind
	// Level is the heading level (1 for a title); 0 for other blocks.
	Level int
	Text  string
	// Page is the 1-based page the block starts on, 0 when the format has no pages.
	Page int
}

// Document is what extraction makes of a file or web page: its blocks in
// reading order. Chunking and indexing work on this, whatever the format.
type Document struct {
	// Title is the document's own title when it names one (HTML <title>, the
	// first heading), used when the source was given none.
	Title  string
	Blocks []Block
	// Pages is the number of pages for paged formats (PDF), else 0.
	Pages int
}

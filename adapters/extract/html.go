package extract

import (
	"bytes"
	"fmt"
	"net/url"
	"strings"

	readability "codeberg.org/readeck/go-readability/v2"
	"github.com/PuerkitoBio/goquery"
	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"

	"github.com/companin/companin/domain/knowledge"
)

// chrome is what repeats around the content of every page of a site:
// navigation, the site's header and footer, and things that are not text.
const chrome = "script, style, noscript, template, svg, iframe, button, select, input, textarea, nav, [role=navigation], [role=banner], [role=contentinfo], [role=search], .navheader, .navfooter, .breadcrumb, .breadcrumbs, [hidden], [aria-hidden=true]"

// HTML extracts an uploaded HTML document: the whole body, every section,
// table, list, definition list and code block, without the page's chrome
// (navigation, and a header or footer outside the main content). An uploaded
// file is the customer's own content, so nothing is judged unimportant.
func HTML(data []byte, pageURL string) (knowledge.Document, error) {
	gdoc, title, err := parseHTML(data)
	if err != nil {
		return knowledge.Document{}, err
	}
	return walkHTML(title, contentRoot(gdoc)), nil
}

// WebPage extracts a page fetched from a URL, where the page is usually an
// article among site furniture: Readability finds the article. When the
// article leaves out a table, definition list or code block of the page (as
// it does on documentation pages), or less than half of the page's text, the
// whole body is used instead, still without chrome.
func WebPage(data []byte, pageURL string) (knowledge.Document, error) {
	gdoc, title, err := parseHTML(data)
	if err != nil {
		return knowledge.Document{}, err
	}
	body := contentRoot(gdoc)
	var u *url.URL
	if pageURL != "" {
		u, _ = url.Parse(pageURL)
	}
	content := body
	if art, err := readability.FromReader(strings.NewReader(toUTF8(data)), u); err == nil && art.Node != nil {
		if keepsStructure(art.Node, body) {
			content = art.Node
		}
		if title == "" {
			title = art.Title()
		}
	}
	return walkHTML(title, content), nil
}

func parseHTML(data []byte) (*goquery.Document, string, error) {
	root, err := html.Parse(strings.NewReader(toUTF8(data)))
	if err != nil {
		return nil, "", fmt.Errorf("%w: the HTML cannot be parsed (%v)", ErrCorrupt, err)
	}
	gdoc := goquery.NewDocumentFromNode(root)
	title := strings.TrimSpace(gdoc.Find("title").First().Text())
	gdoc.Find(chrome).Remove()
	// A header or footer inside the main content (an article's title, a
	// table's notes) is content; the site's own are chrome.
	gdoc.Find("header, footer").Each(func(_ int, s *goquery.Selection) {
		if s.ParentsFiltered("main, article, section, [role=main]").Length() == 0 {
			s.Remove()
		}
	})
	return gdoc, title, nil
}

func contentRoot(gdoc *goquery.Document) *html.Node {
	if body := gdoc.Find("body").First(); body.Length() > 0 {
		return body.Get(0)
	}
	return gdoc.Get(0)
}

// keepsStructure tells whether the article holds at least half of the body's
// words and the text of every table, definition list and code block.
func keepsStructure(article, body *html.Node) bool {
	artText := normalizeSpace(strings.ReplaceAll(textOf(article), "\n", " "))
	n := len(strings.Fields(artText))
	if n == 0 || n*2 < len(strings.Fields(textOf(body))) {
		return false
	}
	keep := true
	goquery.NewDocumentFromNode(body).Find("table, dl, pre").Each(func(_ int, s *goquery.Selection) {
		t := normalizeSpace(strings.ReplaceAll(textOf(s.Get(0)), "\n", " "))
		if keep && t != "" && !strings.Contains(artText, t) {
			keep = false
		}
	})
	return keep
}

func walkHTML(title string, content *html.Node) knowledge.Document {
	var w htmlWalker
	w.walk(content)
	w.flush()
	return knowledge.Document{Title: title, Blocks: w.blocks}
}

type htmlWalker struct {
	blocks []knowledge.Block
	inline bytes.Buffer
}

func (w *htmlWalker) flush() {
	if t := normalizeSpace(w.inline.String()); t != "" {
		w.blocks = append(w.blocks, knowledge.Block{Kind: knowledge.Paragraph, Text: t})
	}
	w.inline.Reset()
}

func (w *htmlWalker) add(kind knowledge.BlockKind, level int, text string) {
	w.flush()
	if kind != knowledge.Code && kind != knowledge.Table {
		text = normalizeSpace(text)
	}
	if strings.TrimSpace(text) != "" {
		w.blocks = append(w.blocks, knowledge.Block{Kind: kind, Level: level, Text: text})
	}
}

func (w *htmlWalker) walk(n *html.Node) {
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		switch c.Type {
		case html.TextNode:
			w.inline.WriteString(c.Data)
			continue
		case html.ElementNode:
		default:
			continue
		}
		switch c.DataAtom {
		case atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6:
			w.add(knowledge.Heading, int(c.Data[1]-'0'), textOf(c))
		case atom.P, atom.Dt, atom.Dd, atom.Figcaption, atom.Caption, atom.Summary:
			w.add(knowledge.Paragraph, 0, textOf(c))
		case atom.Li:
			w.flush()
			w.listItem(c)
		case atom.Table:
			w.add(knowledge.Table, 0, tableText(c))
		case atom.Pre:
			w.add(knowledge.Code, 0, rawText(c))
		case atom.Br:
			w.inline.WriteString("\n")
		case atom.Div, atom.Section, atom.Article, atom.Main, atom.Ul, atom.Ol, atom.Dl, atom.Blockquote,
			atom.Details, atom.Figure, atom.Body, atom.Html, atom.Center, atom.Address, atom.Fieldset, atom.Hr:
			w.flush()
			w.walk(c)
			w.flush()
		case atom.Img:
			if alt := attrOf(c, "alt"); alt != "" {
				w.inline.WriteString(" " + alt + " ")
			}
		default:
			if hasBlockChild(c) {
				w.flush()
				w.walk(c)
				w.flush()
			} else {
				w.inline.WriteString(textOf(c))
			}
		}
	}
}

// listItem emits the item's own text, then its nested lists as items of their own.
func (w *htmlWalker) listItem(li *html.Node) {
	var own bytes.Buffer
	var nested []*html.Node
	for c := li.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.ElementNode && (c.DataAtom == atom.Ul || c.DataAtom == atom.Ol) {
			nested = append(nested, c)
			continue
		}
		own.WriteString(textOf(c))
		if c.Type == html.ElementNode && isBlock(c) {
			own.WriteString("\n")
		}
	}
	w.add(knowledge.ListItem, 0, own.String())
	for _, n := range nested {
		w.walk(n)
		w.flush()
	}
}

func hasBlockChild(n *html.Node) bool {
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.ElementNode && (isBlock(c) || hasBlockChild(c)) {
			return true
		}
	}
	return false
}

func isBlock(n *html.Node) bool {
	switch n.DataAtom {
	case atom.P, atom.Div, atom.Section, atom.Article, atom.Main, atom.Ul, atom.Ol, atom.Li, atom.Table,
		atom.Pre, atom.H1, atom.H2, atom.H3, atom.H4, atom.H5, atom.H6, atom.Blockquote, atom.Dl, atom.Dt,
		atom.Dd, atom.Figure, atom.Details, atom.Hr, atom.Address, atom.Fieldset, atom.Tr, atom.Td, atom.Th:
		return true
	}
	return false
}

func attrOf(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// textOf returns the visible text under n, with line breaks for <br> and
// between block elements.
func textOf(n *html.Node) string {
	var b strings.Builder
	var rec func(*html.Node)
	rec = func(n *html.Node) {
		switch n.Type {
		case html.TextNode:
			b.WriteString(n.Data)
			return
		case html.ElementNode:
			switch n.DataAtom {
			case atom.Script, atom.Style, atom.Noscript, atom.Template:
				return
			case atom.Br:
				b.WriteString("\n")
				return
			case atom.Img:
				if alt := attrOf(n, "alt"); alt != "" {
					b.WriteString(" " + alt + " ")
				}
				return
			}
		}
		block := n.Type == html.ElementNode && isBlock(n)
		if block {
			b.WriteString("\n")
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			rec(c)
		}
		if block {
			b.WriteString("\n")
		}
	}
	rec(n)
	return b.String()
}

func rawText(n *html.Node) string {
	var b strings.Builder
	var rec func(*html.Node)
	rec = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			rec(c)
		}
	}
	rec(n)
	return strings.Trim(b.String(), "\n")
}

// tableText renders a table row by row, cells separated by " | ".
func tableText(t *html.Node) string {
	var rows []string
	var rec func(*html.Node)
	rec = func(n *html.Node) {
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			if c.Type != html.ElementNode {
				continue
			}
			switch c.DataAtom {
			case atom.Table:
				continue // nested tables are rendered in their cell's text
			case atom.Tr:
				var cells []string
				for td := c.FirstChild; td != nil; td = td.NextSibling {
					if td.Type == html.ElementNode && (td.DataAtom == atom.Td || td.DataAtom == atom.Th) {
						cells = append(cells, normalizeSpace(textOf(td)))
					}
				}
				if strings.TrimSpace(strings.Join(cells, "")) != "" {
					rows = append(rows, tableRow(cells))
				}
			default:
				rec(c)
			}
		}
	}
	rec(t)
	return strings.Join(rows, "\n")
}

// normalizeSpace collapses runs of spaces within lines and drops empty lines.
func normalizeSpace(s string) string {
	var out []string
	for _, line := range strings.Split(s, "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			out = append(out, strings.Join(f, " "))
		}
	}
	return strings.Join(out, "\n")
}

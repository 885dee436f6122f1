// Command charts draws the benchmark's figures as SVG bar charts, one file
// per chart, with no dependency and no browser:
//
//	charts -o DIR FIGURES.tsv...
//
// A figures file (bench/run.sh and bench/link.sh write one beside their
// table; docs/charts/figures.tsv holds the figures docs/performance.md
// reports) has tab-separated records, one a line; `#` starts a comment:
//
//	chart  ID  TITLE  UNIT  higher|lower  NOTE
//	bar    ID  GROUP  SERIES  VALUE
//
// A chart is drawn as groups of horizontal bars, in the order the groups
// and series first appear; a later bar with the same chart, group and
// series replaces an earlier one, so files given later win. NOTE (where
// and how the figures were measured) is printed under the title.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"html"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

type bar struct {
	series string
	value  float64
}

type group struct {
	name string
	bars []bar
}

type chart struct {
	id, title, unit, note string
	higherBetter          bool
	groups                []*group
}

func (c *chart) set(g, s string, v float64) {
	var gr *group
	for _, x := range c.groups {
		if x.name == g {
			gr = x
		}
	}
	if gr == nil {
		gr = &group{name: g}
		c.groups = append(c.groups, gr)
	}
	for i := range gr.bars {
		if gr.bars[i].series == s {
			gr.bars[i].value = v
			return
		}
	}
	gr.bars = append(gr.bars, bar{s, v})
}

func main() {
	out := flag.String("o", ".", "directory the SVG files are written to")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: charts -o DIR FIGURES.tsv...")
		os.Exit(2)
	}
	charts, order, err := read(flag.Args())
	if err != nil {
		fmt.Fprintln(os.Stderr, "charts:", err)
		os.Exit(1)
	}
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, "charts:", err)
		os.Exit(1)
	}
	for _, id := range order {
		c := charts[id]
		if len(c.groups) == 0 {
			continue
		}
		name := filepath.Join(*out, id+".svg")
		if err := os.WriteFile(name, []byte(svg(c)), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "charts:", err)
			os.Exit(1)
		}
		fmt.Println(name)
	}
}

func read(files []string) (map[string]*chart, []string, error) {
	charts := map[string]*chart{}
	var order []string
	get := func(id string) *chart {
		c := charts[id]
		if c == nil {
			c = &chart{id: id, title: id, higherBetter: true}
			charts[id] = c
			order = append(order, id)
		}
		return c
	}
	for _, name := range files {
		f, err := os.Open(name)
		if err != nil {
			return nil, nil, err
		}
		sc := bufio.NewScanner(f)
		for n := 1; sc.Scan(); n++ {
			line := sc.Text()
			if strings.TrimSpace(line) == "" || strings.HasPrefix(line, "#") {
				continue
			}
			r := strings.Split(line, "\t")
			switch {
			case r[0] == "chart" && len(r) >= 5 && r[1] != "":
				c := get(r[1])
				c.title, c.unit, c.higherBetter = r[2], r[3], r[4] != "lower"
				if len(r) > 5 {
					c.note = r[5]
				}
			case r[0] == "bar" && len(r) == 5 && r[1] != "":
				v, err := strconv.ParseFloat(r[4], 64)
				if err != nil || math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
					// A figure the run did not produce ("null") is left out.
					continue
				}
				get(r[1]).set(r[2], r[3], v)
			default:
				f.Close()
				return nil, nil, fmt.Errorf("%s:%d: not a chart or bar record: %q", name, n, line)
			}
		}
		f.Close()
		if err := sc.Err(); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", name, err)
		}
	}
	return charts, order, nil
}

// Layout, in SVG user units (pixels).
const (
	width     = 760
	labelW    = 200 // the series names, left of the bars
	valueW    = 90  // room right of the longest bar for its value
	barH      = 16
	barGap    = 4
	groupGap  = 16
	groupHead = 22
	top       = 50 // below the title and unit; each line of the note adds noteH
	noteH     = 13
	noteChars = 125
	axisH     = 30
	font      = "font-family=\"DejaVu Sans, Helvetica, Arial, sans-serif\""
)

// colour: zrep's bars stand out; the comparisons are muted, each kind its
// own hue.
func colour(series string) string {
	s := strings.ToLower(series)
	switch {
	case strings.HasPrefix(s, "zrep"):
		return "#d9480f"
	case strings.HasPrefix(s, "syncoid"):
		return "#5c7cfa"
	case strings.HasPrefix(s, "bare"), strings.HasPrefix(s, "hand"), strings.Contains(s, "ssh "):
		return "#868e96"
	}
	return "#40c057"
}

// ticks are round axis values from 0 to at least max.
func ticks(max float64) []float64 {
	if max <= 0 {
		return []float64{0, 1}
	}
	step := math.Pow(10, math.Floor(math.Log10(max/5)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if max/(step*m) <= 6 {
			step *= m
			break
		}
	}
	var t []float64
	for v := 0.0; ; v += step {
		t = append(t, v)
		if v >= max {
			return t
		}
	}
}

// number prints v with three significant digits at most, no exponent.
func number(v float64) string {
	switch {
	case v == 0:
		return "0"
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case v >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	}
	return strconv.FormatFloat(v, 'f', 3, 64)
}

// wrap cuts s into lines of at most n bytes at spaces.
func wrap(s string, n int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len(line)+1+len(w) > n {
			lines = append(lines, line)
			line = ""
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" {
		lines = append(lines, line)
	}
	return lines
}

func svg(c *chart) string {
	max := 0.0
	rows := 0
	for _, g := range c.groups {
		rows += len(g.bars)
		for _, b := range g.bars {
			max = math.Max(max, b.value)
		}
	}
	t := ticks(max)
	scaleMax := t[len(t)-1]
	plotW := float64(width - labelW - valueW - 20)
	x := func(v float64) float64 { return labelW + v/scaleMax*plotW }
	note := wrap(c.note, noteChars)
	plotTop := top + len(note)*noteH
	height := plotTop + len(c.groups)*(groupHead+groupGap) + rows*(barH+barGap) + axisH

	var b strings.Builder
	fmt.Fprintf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" viewBox=\"0 0 %d %d\" %s font-size=\"12\">\n",
		width, height, width, height, font)
	fmt.Fprintf(&b, "<title>%s</title>\n", html.EscapeString(c.title))
	fmt.Fprintf(&b, "<rect width=\"100%%\" height=\"100%%\" fill=\"#ffffff\"/>\n")
	better := "higher is better"
	if !c.higherBetter {
		better = "lower is better"
	}
	fmt.Fprintf(&b, "<text x=\"10\" y=\"22\" font-size=\"16\" font-weight=\"bold\">%s</text>\n", html.EscapeString(c.title))
	fmt.Fprintf(&b, "<text x=\"10\" y=\"40\" fill=\"#495057\">%s (%s)</text>\n", html.EscapeString(c.unit), better)
	for i, line := range note {
		fmt.Fprintf(&b, "<text x=\"10\" y=\"%d\" font-size=\"10\" fill=\"#868e96\">%s</text>\n", top+4+i*noteH, html.EscapeString(line))
	}
	plotBottom := height - axisH
	// As many decimals as the step between ticks needs.
	dec := 0
	for step := t[1] - t[0]; dec < 4 && math.Abs(step-math.Round(step)) > 1e-9; step *= 10 {
		dec++
	}
	for _, v := range t {
		fmt.Fprintf(&b, "<line x1=\"%.1f\" y1=\"%d\" x2=\"%.1f\" y2=\"%d\" stroke=\"#e9ecef\"/>\n", x(v), plotTop, x(v), plotBottom)
		fmt.Fprintf(&b, "<text x=\"%.1f\" y=\"%d\" text-anchor=\"middle\" fill=\"#495057\" font-size=\"11\">%s</text>\n", x(v), plotBottom+16, strconv.FormatFloat(v, 'f', dec, 64))
	}
	y := plotTop
	for _, g := range c.groups {
		y += groupHead
		fmt.Fprintf(&b, "<text x=\"10\" y=\"%d\" font-weight=\"bold\">%s</text>\n", y-6, html.EscapeString(g.name))
		for _, br := range g.bars {
			fmt.Fprintf(&b, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text>\n", labelW-8, y+barH-4, html.EscapeString(br.series))
			fmt.Fprintf(&b, "<rect x=\"%d\" y=\"%d\" width=\"%.1f\" height=\"%d\" fill=\"%s\"><title>%s, %s: %s %s</title></rect>\n",
				labelW, y, x(br.value)-labelW, barH, colour(br.series),
				html.EscapeString(g.name), html.EscapeString(br.series), number(br.value), html.EscapeString(c.unit))
			fmt.Fprintf(&b, "<text x=\"%.1f\" y=\"%d\" fill=\"#212529\">%s</text>\n", x(br.value)+4, y+barH-4, number(br.value))
			y += barH + barGap
		}
		y += groupGap
	}
	fmt.Fprintf(&b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"#495057\"/>\n", labelW, plotTop, labelW, plotBottom)
	b.WriteString("</svg>\n")
	return b.String()
}

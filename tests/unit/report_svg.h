// Reading back what render_report_html() emitted (report_html_test.cpp, report_chromium_test.cpp):
// the example reports under tests/data, and the attributes of SVG elements found by class.
#pragma once

#include <map>
#include <regex>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "shell_util.h"

namespace fl::test {

inline nlohmann::json load_report(const std::string& name) {
  return nlohmann::json::parse(slurp(std::string(FL_SOURCE_DIR) + "/tests/data/" + name));
}

using Attrs = std::map<std::string, std::string>;

// Every <tag class="cls" ...> element (the class attribute first, as the renderer writes it),
// in document order, with its attributes.
inline std::vector<Attrs> elements(const std::string& html, const std::string& cls) {
  std::vector<Attrs> out;
  const std::regex el("<([a-z]+) class=\"" + cls + "\"([^>]*)>");
  const std::regex attr("([a-zA-Z0-9:-]+)=\"([^\"]*)\"");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), el); it != std::sregex_iterator(); ++it) {
    Attrs a{{"tag", (*it)[1]}};
    const std::string rest = (*it)[2];
    for (auto at = std::sregex_iterator(rest.begin(), rest.end(), attr); at != std::sregex_iterator(); ++at)
      a[(*at)[1]] = (*at)[2];
    out.push_back(std::move(a));
  }
  return out;
}

// The part of html from the chart with this id to the end of that chart.
inline std::string chart(const std::string& html, const std::string& id) {
  auto b = html.find("<svg class=\"chart\" id=\"" + id + "\"");
  if (b == std::string::npos) return "";
  auto e = html.find("</svg>", b);
  return html.substr(b, e == std::string::npos ? std::string::npos : e - b);
}

struct Pt {
  double x, y;
};

inline std::vector<Pt> points(const std::string& attr) {
  std::vector<Pt> out;
  const std::regex pair("(-?[0-9.e+-]+),(-?[0-9.e+-]+)");
  for (auto it = std::sregex_iterator(attr.begin(), attr.end(), pair); it != std::sregex_iterator(); ++it)
    out.push_back(Pt{std::stod((*it)[1]), std::stod((*it)[2])});
  return out;
}

}  // namespace fl::test

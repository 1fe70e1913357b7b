#include "unit/fake_kernel_util.h"

#include <sstream>

namespace fl::test {

using daemon::Attachment;
using daemon::DataPath;
using daemon::NsScope;
using daemon::TargetNs;

namespace {

std::string cidr_text(const core::Cidr& c) { return c.str(); }

class FakeNs final : public TargetNs {
 public:
  FakeNs(FakeNsState* s) : s_(s), path_("/run/netns/" + s->name) {}
  const kernel::NetnsId& id() const override { return s_->id; }
  const std::string& path() const override { return path_; }
  FakeNsState* s_;
  std::string path_;
};

class FakeScope final : public NsScope {
 public:
  explicit FakeScope(FakeKernel& k) : k_(k) {}
  ~FakeScope() override {
    std::lock_guard l(k_.mu_);
    k_.entered_.pop_back();
  }

 private:
  FakeKernel& k_;
};

class FakeDp final : public DataPath {
 public:
  FakeDp(FakeKernel& k, int id) : k_(k), id_(id) {}
  int id() const { return id_; }
  FakeDatapathState& st() { return k_.dps_[id_]; }

  void set_nslots(uint32_t n) override {
    std::lock_guard l(k_.mu_);
    st().nslots = n;
  }
  void set_unscoped(bool on) override {
    std::lock_guard l(k_.mu_);
    st().unscoped = on;
  }
  Status write_slot(uint32_t idx, const fl_slot& s) override {
    FL_TRY(k_.step("write_slot"));
    std::lock_guard l(k_.mu_);
    if (st().slots[idx].expires_ns != 0) return make_error(Errc::internal, "fake: write to an active slot");
    st().slots[idx] = s;
    st().slots[idx].expires_ns = 0;
    return {};
  }
  void activate_slot(uint32_t idx, uint64_t expires_ns) override {
    std::lock_guard l(k_.mu_);
    st().slots[idx].expires_ns = expires_ns;
  }
  void deactivate_slot(uint32_t idx) override {
    std::lock_guard l(k_.mu_);
    st().slots[idx].expires_ns = 0;
  }
  void set_slot_dir(uint32_t idx, uint8_t dir) override {
    std::lock_guard l(k_.mu_);
    st().slots[idx].dir = dir;
  }
  const fl_slot& slot(uint32_t idx) const override {
    std::lock_guard l(k_.mu_);
    return k_.dps_[id_].slots[idx];
  }
  Status changes(std::map<std::string, uint64_t>& m, const std::vector<core::SetMap::Change>& ch) {
    for (const auto& c : ch) {
      if (c.erase)
        m.erase(cidr_text(c.cidr));
      else
        m[cidr_text(c.cidr)] = c.mask;
    }
    return {};
  }
  Status apply_set_changes(const std::vector<core::SetMap::Change>& ch) override {
    FL_TRY(k_.step("apply_set_changes"));
    std::lock_guard l(k_.mu_);
    return changes(st().sets, ch);
  }
  Status apply_exempt_changes(const std::vector<core::SetMap::Change>& ch) override {
    FL_TRY(k_.step("apply_exempt_changes"));
    std::lock_guard l(k_.mu_);
    return changes(st().exempt, ch);
  }
  Status set_u32(const char* op, std::map<uint32_t, uint64_t> FakeDatapathState::*m, uint32_t k, uint64_t v) {
    FL_TRY(k_.step(op));
    std::lock_guard l(k_.mu_);
    (st().*m)[k] = v;
    return {};
  }
  Status del_u32(const char* op, std::map<uint32_t, uint64_t> FakeDatapathState::*m, uint32_t k) {
    FL_TRY(k_.step(op));
    std::lock_guard l(k_.mu_);
    (st().*m).erase(k);
    return {};
  }
  Status set_exempt_port(uint32_t key, uint64_t rules) override {
    return set_u32("set_exempt_port", &FakeDatapathState::ports, key, rules);
  }
  Status delete_exempt_port(uint32_t key) override {
    return del_u32("delete_exempt_port", &FakeDatapathState::ports, key);
  }
  Status set_iface_bit(uint32_t ifindex, uint64_t bit) override {
    return set_u32("set_iface_bit", &FakeDatapathState::ifaces, ifindex, bit);
  }
  Status delete_iface(uint32_t ifindex) override { return del_u32("delete_iface", &FakeDatapathState::ifaces, ifindex); }
  Status set_ifb(uint32_t ifindex, uint32_t value) override {
    return set_u32("set_ifb", &FakeDatapathState::ifb, ifindex, value);
  }
  Status delete_ifb(uint32_t ifindex) override { return del_u32("delete_ifb", &FakeDatapathState::ifb, ifindex); }
  Status reset_slot_state(uint32_t) override { return k_.step("reset_slot_state"); }
  Result<kernel::Counters> counters(uint32_t) const override { return kernel::Counters{}; }
  Result<std::array<uint64_t, FL_STAT_MAX>> stats() const override { return std::array<uint64_t, FL_STAT_MAX>{}; }

 private:
  FakeKernel& k_;
  int id_;
};

class FakeAttachment final : public Attachment {
 public:
  FakeAttachment(FakeKernel& k, FakeNsState* ns, kernel::Interface ifc) : k_(k), ns_(ns), ifc_(std::move(ifc)) {}
  Status detach() override {
    FL_TRY(k_.step("detach"));
    std::lock_guard l(k_.mu_);
    ns_->hooks.erase(ifc_.index);
    return {};
  }
  Result<bool> alive() const override {
    std::lock_guard l(k_.mu_);
    return ns_->hooks.count(ifc_.index) > 0;
  }
  void forget() override {}
  const kernel::Interface& interface() const override { return ifc_; }
  bool created_clsact() const override { return false; }

 private:
  FakeKernel& k_;
  FakeNsState* ns_;
  kernel::Interface ifc_;
};

class FakePort final : public daemon::KernelPort {
 public:
  explicit FakePort(FakeKernel& k) : k_(k) {}

  Result<std::unique_ptr<TargetNs>> open_target(const core::Target& t) override {
    FL_TRY(k_.step("open_target"));
    std::lock_guard l(k_.mu_);
    auto it = k_.ns_.find(t.value);
    if (t.kind != core::Target::Kind::netns_name || it == k_.ns_.end() || it->second.gone)
      return make_error(Errc::target_unavailable, "fake: no namespace " + t.str());
    return std::unique_ptr<TargetNs>(new FakeNs(&it->second));
  }
  bool target_still_there(const core::Target& spec, const TargetNs& held) override {
    std::lock_guard l(k_.mu_);
    auto* s = static_cast<const FakeNs&>(held).s_;
    return !s->gone && s->name == spec.value;
  }
  Result<std::unique_ptr<NsScope>> enter(const TargetNs& ns) override {
    FL_TRY(k_.step("enter"));
    std::lock_guard l(k_.mu_);
    k_.entered_.push_back(static_cast<const FakeNs&>(ns).s_);
    return std::unique_ptr<NsScope>(new FakeScope(k_));
  }
  Result<std::unique_ptr<DataPath>> take_datapath() override {
    FL_TRY(k_.step("take_datapath"));
    std::lock_guard l(k_.mu_);
    int id = k_.next_dp_++;
    k_.dps_[id];
    return std::unique_ptr<DataPath>(new FakeDp(k_, id));
  }
  uint64_t grace_current() override {
    std::lock_guard l(k_.mu_);
    return k_.epoch_;
  }
  uint64_t grace_completed() override {
    std::lock_guard l(k_.mu_);
    return k_.completed_;
  }
  void grace_request() override {
    std::lock_guard l(k_.mu_);
    k_.completed_ = k_.epoch_++;
  }
  bool grace_wait(uint64_t stamp, std::chrono::milliseconds) override {
    std::lock_guard l(k_.mu_);
    if (stamp > k_.completed_) k_.completed_ = k_.epoch_++;
    return true;
  }

  Result<std::vector<kernel::Interface>> list_interfaces() override {
    FL_TRY(k_.step("list_interfaces"));
    std::lock_guard l(k_.mu_);
    auto out = k_.cur()->ifaces;
    for (auto [ifb, for_if] : k_.cur()->ifbs) {
      kernel::Interface i;
      i.name = kernel::ifb_name(for_if);
      i.index = ifb;
      out.push_back(i);
    }
    return out;
  }
  kernel::DeviceLookup lookup_device(int ifindex) override {
    std::lock_guard l(k_.mu_);
    auto* ns = k_.cur();
    for (const auto& i : ns->ifaces)
      if (i.index == ifindex) return {kernel::DeviceLookup::present, i.name, 0};
    if (auto it = ns->ifbs.find(ifindex); it != ns->ifbs.end())
      return {kernel::DeviceLookup::present, kernel::ifb_name(it->second), 0};
    return {kernel::DeviceLookup::gone, "", 0};
  }
  std::optional<bool> same_device(const kernel::Interface& was) override {
    std::lock_guard l(k_.mu_);
    for (const auto& i : k_.cur()->ifaces)
      if (i.index == was.index && i.name == was.name && i.hwaddr == was.hwaddr) return true;
    return false;
  }
  Result<std::unique_ptr<Attachment>> attach(const kernel::Interface& ifc, DataPath& dp,
                                             kernel::AttachMode) override {
    FL_TRY(k_.step("attach"));
    std::lock_guard l(k_.mu_);
    auto* ns = k_.cur();
    if (ns->hooks.count(ifc.index)) return make_error(Errc::already_exists, "fake: hooks already on " + ifc.name);
    ns->hooks[ifc.index] = static_cast<FakeDp&>(dp).id();
    return std::unique_ptr<Attachment>(new FakeAttachment(k_, ns, ifc));
  }
  Result<kernel::SavedQdisc> read_root_qdisc(int ifindex) override {
    FL_TRY(k_.step("read_root_qdisc"));
    std::lock_guard l(k_.mu_);
    kernel::SavedQdisc q;
    auto it = k_.cur()->roots.find(ifindex);
    q.kind = it == k_.cur()->roots.end() ? "noqueue" : it->second;
    q.ours = q.kind == "htb:ours";
    return q;
  }
  Status check_replaceable(const kernel::SavedQdisc& q, int, const std::string& ifname, bool replace_root) override {
    FL_TRY(k_.step("check_replaceable"));
    if (replace_root || q.ours || q.kind == "noqueue") return {};
    return make_error(Errc::already_exists, ifname + " has root qdisc " + q.kind);
  }
  Status install_root(int ifindex) override {
    FL_TRY(k_.step("install_root"));
    std::lock_guard l(k_.mu_);
    k_.cur()->roots[ifindex] = "htb:ours";
    return {};
  }
  Status restore_root(int ifindex, const kernel::SavedQdisc& saved) override {
    FL_TRY(k_.step("restore_root"));
    std::lock_guard l(k_.mu_);
    auto* ns = k_.cur();
    if (saved.kind == "noqueue")
      ns->roots.erase(ifindex);
    else
      ns->roots[ifindex] = saved.kind;
    // Our classes go with our root.
    for (auto it = ns->classes.begin(); it != ns->classes.end();)
      it = it->first == ifindex ? ns->classes.erase(it) : std::next(it);
    return {};
  }
  Status add_class(int ifindex, uint16_t minor, const core::ShapeProfile&) override {
    FL_TRY(k_.step("add_class"));
    std::lock_guard l(k_.mu_);
    k_.cur()->classes.insert({ifindex, minor});
    return {};
  }
  Status delete_class(int ifindex, uint16_t minor) override {
    FL_TRY(k_.step("delete_class"));
    std::lock_guard l(k_.mu_);
    k_.cur()->classes.erase({ifindex, minor});
    return {};
  }
  Result<int> create_ifb(int for_ifindex) override {
    FL_TRY(k_.step("create_ifb"));
    std::lock_guard l(k_.mu_);
    int idx = k_.next_ifindex_++;
    k_.cur()->ifbs[idx] = for_ifindex;
    return idx;
  }
  Status delete_link(int ifindex) override {
    FL_TRY(k_.step("delete_link"));
    std::lock_guard l(k_.mu_);
    auto* ns = k_.cur();
    ns->ifbs.erase(ifindex);
    ns->roots.erase(ifindex);
    for (auto it = ns->classes.begin(); it != ns->classes.end();)
      it = it->first == ifindex ? ns->classes.erase(it) : std::next(it);
    return {};
  }
  Status attach_ifb_mirred(int ifindex, DataPath&, int) override {
    FL_TRY(k_.step("attach_ifb_mirred"));
    std::lock_guard l(k_.mu_);
    k_.cur()->mirred.insert(ifindex);
    return {};
  }
  Status detach_ifb_mirred(int ifindex) override {
    FL_TRY(k_.step("detach_ifb_mirred"));
    std::lock_guard l(k_.mu_);
    k_.cur()->mirred.erase(ifindex);
    return {};
  }
  Result<kernel::DestroyResult> destroy_cut_connections(const core::FaultSpec&,
                                                        const std::vector<core::Exemption>&) override {
    FL_TRY(k_.step("destroy_cut_connections"));
    return kernel::DestroyResult{};
  }
  Status probe_sock_destroy() override { return k_.step("probe_sock_destroy"); }

 private:
  FakeKernel& k_;
};

}  // namespace

FakeKernel::FakeKernel() = default;
FakeKernel::~FakeKernel() = default;

void FakeKernel::add_ns(const std::string& name, const std::vector<std::string>& ifaces) {
  std::lock_guard l(mu_);
  FakeNsState s;
  s.name = name;
  s.id = kernel::NetnsId{7, static_cast<ino_t>(4026530000 + ns_.size())};
  kernel::Interface lo;
  lo.name = "lo";
  lo.index = 1;
  lo.loopback = true;
  lo.ethernet = false;
  lo.arphrd = 772;
  s.ifaces.push_back(lo);
  int idx = 2;
  for (const auto& n : ifaces) {
    kernel::Interface i;
    i.name = n;
    i.index = idx++;
    i.hwaddr = {2, 0, 0, 0, static_cast<uint8_t>(ns_.size()), static_cast<uint8_t>(i.index)};
    s.ifaces.push_back(i);
  }
  ns_[name] = std::move(s);
}

void FakeKernel::delete_iface(const std::string& ns, const std::string& ifname) {
  std::lock_guard l(mu_);
  auto& s = ns_.at(ns);
  for (auto it = s.ifaces.begin(); it != s.ifaces.end(); ++it) {
    if (it->name != ifname) continue;
    int idx = it->index;
    s.ifaces.erase(it);
    s.hooks.erase(idx);
    s.roots.erase(idx);
    s.mirred.erase(idx);
    for (auto c = s.classes.begin(); c != s.classes.end();) c = c->first == idx ? s.classes.erase(c) : std::next(c);
    return;
  }
}

void FakeKernel::lose_ns(const std::string& ns) {
  std::lock_guard l(mu_);
  ns_.at(ns).gone = true;
}

void FakeKernel::set_root_qdisc(const std::string& ns, const std::string& ifname, const std::string& kind) {
  std::lock_guard l(mu_);
  auto& s = ns_.at(ns);
  for (const auto& i : s.ifaces)
    if (i.name == ifname) s.roots[i.index] = kind;
}

std::unique_ptr<daemon::KernelPort> FakeKernel::port() { return std::make_unique<FakePort>(*this); }

FakeNsState* FakeKernel::cur() {
  if (entered_.empty()) throw std::logic_error("fake kernel: namespace call outside enter()");
  return const_cast<FakeNsState*>(entered_.back());
}

Status FakeKernel::step(const std::string& op) {
  std::unique_lock l(step_mu_);
  int n = ++steps_;
  log_.push_back(std::to_string(n) + " " + op);
  if (!block_op_.empty() && op == block_op_) {
    block_op_.clear();
    blocked_ = true;
    cv_.notify_all();
    cv_.wait(l, [&] { return !blocked_; });
  }
  if (fail_at_ != 0 && n == fail_at_) return make_error(Errc::internal, "fake: step " + std::to_string(n) + " (" + op + ") fails");
  return {};
}

int FakeKernel::steps() const {
  std::lock_guard l(step_mu_);
  return steps_;
}

std::vector<std::string> FakeKernel::step_log() const {
  std::lock_guard l(step_mu_);
  return log_;
}

void FakeKernel::fail_at(int n) {
  std::lock_guard l(step_mu_);
  fail_at_ = n == 0 ? 0 : steps_ + n;
}

void FakeKernel::block_on(const std::string& op) {
  std::lock_guard l(step_mu_);
  block_op_ = op;
}

bool FakeKernel::wait_blocked(std::chrono::milliseconds timeout) {
  std::unique_lock l(step_mu_);
  return cv_.wait_for(l, timeout, [&] { return blocked_; });
}

void FakeKernel::release() {
  std::lock_guard l(step_mu_);
  blocked_ = false;
  cv_.notify_all();
}

size_t FakeKernel::datapaths_taken() const {
  std::lock_guard l(const_cast<std::mutex&>(mu_));
  return static_cast<size_t>(next_dp_ - 1);
}

std::string FakeKernel::dump() const {
  std::lock_guard l(const_cast<std::mutex&>(mu_));
  std::ostringstream o;
  std::set<int> hooked;
  for (const auto& [name, s] : ns_) {
    o << "ns " << name << (s.gone ? " (gone)" : "") << "\n";
    for (const auto& i : s.ifaces) o << "  if " << i.index << " " << i.name << "\n";
    for (auto [i, k] : s.roots) o << "  root " << i << " " << k << "\n";
    for (auto [d, m] : s.classes) o << "  class " << d << " " << std::hex << m << std::dec << "\n";
    for (auto [i, f] : s.ifbs) o << "  ifb " << i << " for " << f << "\n";
    for (int i : s.mirred) o << "  mirred " << i << "\n";
    for (auto [i, dp] : s.hooks) {
      o << "  hooks " << i << " dp" << dp << "\n";
      hooked.insert(dp);
    }
  }
  for (const auto& [id, d] : dps_) {
    std::ostringstream m;
    for (uint32_t k = 0; k < FL_MAX_SLOTS; k++)
      if (d.slots[k].expires_ns != 0)
        m << "  active slot " << k << " kind " << int(d.slots[k].kind) << " dir " << int(d.slots[k].dir) << "\n";
    for (auto& [c, v] : d.sets) m << "  set " << c << " " << v << "\n";
    for (auto& [c, v] : d.exempt) m << "  exempt " << c << " " << v << "\n";
    for (auto [k, v] : d.ports) m << "  port " << k << " " << v << "\n";
    for (auto [k, v] : d.ifaces) m << "  iface " << k << " " << v << "\n";
    for (auto [k, v] : d.ifb) m << "  ifb " << k << " " << v << "\n";
    if (m.str().empty() && !hooked.count(id)) continue;  // an idle, unattached data path
    o << "dp" << id << " nslots " << d.nslots << (d.unscoped ? " unscoped" : "") << "\n" << m.str();
  }
  return o.str();
}

}  // namespace fl::test

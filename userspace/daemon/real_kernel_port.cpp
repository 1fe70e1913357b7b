#include "daemon/real_kernel_port.h"

#include "daemon/reset.h"
#include "kernel/datapath_pool.h"
#include "kernel/grace.h"

namespace fl::daemon {

namespace {

class RealDataPath final : public DataPath {
 public:
  explicit RealDataPath(std::unique_ptr<kernel::Datapath> dp) : dp_(std::move(dp)) {}
  kernel::Datapath& dp() { return *dp_; }

  void set_nslots(uint32_t n) override { dp_->set_nslots(n); }
  void set_unscoped(bool on) override { dp_->set_unscoped(on); }
  Status write_slot(uint32_t idx, const fl_slot& s) override { return dp_->write_slot(idx, s); }
  void activate_slot(uint32_t idx, uint64_t expires_ns) override { dp_->activate_slot(idx, expires_ns); }
  void deactivate_slot(uint32_t idx) override { dp_->deactivate_slot(idx); }
  void set_slot_dir(uint32_t idx, uint8_t dir) override { dp_->set_slot_dir(idx, dir); }
  const fl_slot& slot(uint32_t idx) const override { return dp_->slot(idx); }
  Status apply_set_changes(const std::vector<core::SetMap::Change>& c) override { return dp_->apply_set_changes(c); }
  Status apply_exempt_changes(const std::vector<core::SetMap::Change>& c) override {
    return dp_->apply_exempt_changes(c);
  }
  Status set_exempt_port(uint32_t key, uint64_t rules) override { return dp_->set_exempt_port(key, rules); }
  Status delete_exempt_port(uint32_t key) override { return dp_->delete_exempt_port(key); }
  Status set_iface_bit(uint32_t ifindex, uint64_t bit) override { return dp_->set_iface_bit(ifindex, bit); }
  Status delete_iface(uint32_t ifindex) override { return dp_->delete_iface(ifindex); }
  Status set_ifb(uint32_t ifindex, uint32_t value) override { return dp_->set_ifb(ifindex, value); }
  Status delete_ifb(uint32_t ifindex) override { return dp_->delete_ifb(ifindex); }
  Status reset_slot_state(uint32_t idx) override { return dp_->reset_slot_state(idx); }
  Result<kernel::Counters> counters(uint32_t idx) const override { return dp_->counters(idx); }
  Result<std::array<uint64_t, FL_STAT_MAX>> stats() const override { return dp_->stats(); }
  kernel::Datapath* leased() override { return dp_.get(); }

 private:
  std::unique_ptr<kernel::Datapath> dp_;
};

class RealNs final : public TargetNs {
 public:
  explicit RealNs(kernel::Netns ns) : ns_(std::move(ns)) {}
  const kernel::NetnsId& id() const override { return ns_.id(); }
  const std::string& path() const override { return ns_.path(); }
  const kernel::Netns& ns() const { return ns_; }

 private:
  kernel::Netns ns_;
};

class RealAttachment final : public Attachment {
 public:
  explicit RealAttachment(kernel::InterfaceAttachment a) : a_(std::move(a)) {}
  Status detach() override { return a_.detach(); }
  Result<bool> alive() const override { return a_.alive(); }
  void forget() override { a_.forget(); }
  const kernel::Interface& interface() const override { return a_.interface(); }
  bool created_clsact() const override { return a_.created_clsact(); }

 private:
  kernel::InterfaceAttachment a_;
};

class RealScope final : public NsScope {
 public:
  explicit RealScope(kernel::NetnsGuard g) : g_(std::move(g)) {}

 private:
  kernel::NetnsGuard g_;
};

class RealKernelPort final : public KernelPort {
 public:
  RealKernelPort(std::unique_ptr<kernel::GracePeriod> grace, kernel::Netns host, size_t spares)
      : grace_(std::move(grace)), host_(std::move(host)), pool_(spares) {}

  Result<std::unique_ptr<TargetNs>> open_target(const core::Target& t) override {
    auto ns = kernel::Netns::open(t, host_);
    if (!ns.ok()) return ns.take_error();
    return std::unique_ptr<TargetNs>(new RealNs(std::move(*ns)));
  }
  bool target_still_there(const core::Target& spec, const TargetNs& held) override {
    return kernel::target_still_there(spec, static_cast<const RealNs&>(held).ns());
  }
  Result<std::unique_ptr<NsScope>> enter(const TargetNs& ns) override {
    auto g = kernel::NetnsGuard::enter(static_cast<const RealNs&>(ns).ns());
    if (!g.ok()) return g.take_error();
    return std::unique_ptr<NsScope>(new RealScope(std::move(*g)));
  }
  Result<std::unique_ptr<DataPath>> take_datapath() override {
    auto dp = pool_.take();
    if (!dp.ok()) return dp.take_error();
    return std::unique_ptr<DataPath>(new RealDataPath(std::move(*dp)));
  }
  uint64_t grace_current() override { return grace_->current(); }
  uint64_t grace_completed() override { return grace_->completed(); }
  void grace_request() override { grace_->request(); }
  bool grace_wait(uint64_t stamp, std::chrono::milliseconds timeout) override { return grace_->wait(stamp, timeout); }

  Result<std::vector<kernel::Interface>> list_interfaces() override { return kernel::list_interfaces(); }
  kernel::DeviceLookup lookup_device(int ifindex) override { return kernel::lookup_device(ifindex); }
  std::optional<bool> same_device(const kernel::Interface& was) override { return kernel::same_device(was); }
  Result<std::unique_ptr<Attachment>> attach(const kernel::Interface& ifc, DataPath& dp,
                                             kernel::AttachMode mode) override {
    auto& real = static_cast<RealDataPath&>(dp).dp();
    auto a = kernel::InterfaceAttachment::attach(ifc, real.ingress_fd(), real.egress_fd(), mode);
    if (!a.ok()) return a.take_error();
    return std::unique_ptr<Attachment>(new RealAttachment(std::move(*a)));
  }
  Result<kernel::SavedQdisc> read_root_qdisc(int ifindex) override { return kernel::read_root_qdisc(ifindex); }
  Status check_replaceable(const kernel::SavedQdisc& q, int ifindex, const std::string& ifname,
                           bool replace_root) override {
    return kernel::check_replaceable(q, ifindex, ifname, replace_root);
  }
  Status install_root(int ifindex) override { return kernel::install_root(ifindex); }
  Status restore_root(int ifindex, const kernel::SavedQdisc& saved) override {
    return kernel::restore_root(ifindex, saved);
  }
  Status add_class(int ifindex, uint16_t minor, const core::ShapeProfile& p) override {
    return kernel::add_class(ifindex, minor, p);
  }
  Status delete_class(int ifindex, uint16_t minor) override { return kernel::delete_class(ifindex, minor); }
  Result<int> create_ifb(int for_ifindex) override { return kernel::create_ifb(for_ifindex); }
  Status delete_link(int ifindex) override { return kernel::delete_link(ifindex); }
  Status attach_ifb_mirred(int ifindex, DataPath& dp, int ifb_ifindex) override {
    return kernel::attach_ifb_mirred(ifindex, static_cast<RealDataPath&>(dp).dp().ifb_match_fd(), ifb_ifindex);
  }
  Status detach_ifb_mirred(int ifindex) override { return kernel::detach_ifb_mirred(ifindex); }
  Result<kernel::DestroyResult> destroy_cut_connections(const core::FaultSpec& spec,
                                                        const std::vector<core::Exemption>& ex) override {
    return reset_cut_connections(spec, ex);
  }
  Status probe_sock_destroy() override { return kernel::probe_sock_destroy(); }

 private:
  std::unique_ptr<kernel::GracePeriod> grace_;
  kernel::Netns host_;
  kernel::DatapathPool pool_;
};

}  // namespace

Result<std::unique_ptr<KernelPort>> make_real_kernel_port(size_t spare_datapaths) {
  auto grace = kernel::GracePeriod::create();
  if (!grace.ok()) return grace.take_error();
  auto host = kernel::Netns::self();
  if (!host.ok()) return host.take_error();
  return std::unique_ptr<KernelPort>(new RealKernelPort(std::move(*grace), std::move(*host), spare_datapaths));
}

}  // namespace fl::daemon

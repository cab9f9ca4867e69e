// BackgroundJob: one blocking job on a worker thread, its result posted to the event loop.
// clang-format off
#include <utility>  // Boost 1.74 asio misses this include under g++ 12: first
// clang-format on

#include "daemon/background_job.h"

#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <exception>
#include <system_error>

namespace vigil::daemon {

namespace asio = boost::asio;

struct BackgroundJob::Token {
  BackgroundJob* job;
  Done done;
};

BackgroundJob::BackgroundJob(asio::io_context& io) : io_(io) {}

BackgroundJob::~BackgroundJob() { cancel(); }

Status BackgroundJob::start(Job job, Done done) {
  if (running_) return err(Errc::kAborted, "background job: one is already running");
  if (thread_.joinable()) thread_.join();  // ended; its completion is queued or ran
  auto token = std::make_shared<Token>(Token{this, std::move(done)});
  std::weak_ptr<Token> weak = token;
  try {
    thread_ = std::thread([this, weak, job = std::move(job)]() mutable {
      Result<std::string> r = std::string();
      try {
        r = job();
      } catch (const std::exception& e) {  // bad_alloc: reported, not std::terminate
        r = std::unexpected(Status(Errc::kInternal, std::string("background job: ") + e.what()));
      }
      job = nullptr;  // what it captured (megabytes) is freed here, not on the loop
      // The completion holds only the weak token: after cancel() it does nothing, and the
      // io_context may drop it unrun at shutdown.
      asio::post(io_, [weak, r = std::move(r)]() mutable {
        std::shared_ptr<Token> t = weak.lock();
        if (!t) return;
        BackgroundJob* self = t->job;
        Done d = std::move(t->done);
        self->running_ = false;
        self->token_.reset();
        if (self->thread_.joinable()) self->thread_.join();  // it has returned from post
        if (d) d(std::move(r));
      });
    });
  } catch (const std::system_error& e) {
    return err(Errc::kInternal, std::string("background job: cannot start a thread: ") + e.what());
  }
  token_ = std::move(token);
  running_ = true;
  return Status();
}

void BackgroundJob::cancel() {
  token_.reset();
  running_ = false;
  if (thread_.joinable()) thread_.join();
}

}  // namespace vigil::daemon

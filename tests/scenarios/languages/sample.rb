# Rate limiting for the public API.
require "time"

module Api
  class RateLimiter
    DEFAULT_LIMIT = 60

    def initialize(limit = DEFAULT_LIMIT)
      @limit = limit
      @hits = Hash.new(0)
    end

    def allow?(client)
      @hits[client] += 1
      @hits[client] <= @limit
    end

    def self.build(config)
      new(config.fetch(:limit, DEFAULT_LIMIT))
    end
  end
end

def reset_all(limiters)
  limiters.each(&:reset)
end

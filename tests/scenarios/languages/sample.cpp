#include <string>
#include <vector>

namespace geo {

class Shape {
 public:
  virtual ~Shape() = default;
  virtual double area() const = 0;
};

class Rect : public Shape {
 public:
  Rect(double w, double h) : w_(w), h_(h) {}
  double area() const override { return w_ * h_; }

 private:
  double w_;
  double h_;
};

double total_area(const std::vector<Shape*>& shapes) {
  double sum = 0;
  for (const Shape* s : shapes) {
    sum += s->area();
  }
  return sum;
}

}  // namespace geo

template <typename T>
T max_of(T a, T b) {
  return a > b ? a : b;
}

std::string Greeter::greet(const std::string& name) {
  return "hello " + name;
}

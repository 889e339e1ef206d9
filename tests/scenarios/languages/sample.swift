import Foundation

protocol Shape {
    func area() -> Double
}

struct Circle: Shape {
    let radius: Double

    func area() -> Double {
        return Double.pi * radius * radius
    }
}

class Canvas {
    private var shapes: [Shape] = []

    func add(_ shape: Shape) {
        shapes.append(shape)
    }

    func totalArea() -> Double {
        return shapes.reduce(0) { $0 + $1.area() }
    }
}

enum Unit {
    case metric
    case imperial
}

func makeCanvas() -> Canvas {
    return Canvas()
}

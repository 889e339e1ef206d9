# def core(): pass
